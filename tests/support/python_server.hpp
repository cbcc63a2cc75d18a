// Tests only: a test server written in Python (the system /usr/bin/python3,
// standard library only), run as a child. It prints one JSON line when it
// is ready (its ports, at least) and exits when its stdin closes, which
// happens when this object goes or this process ends, however it ends.
#ifndef LAUNCH_TESTS_SUPPORT_PYTHON_SERVER_HPP
#define LAUNCH_TESTS_SUPPORT_PYTHON_SERVER_HPP

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>
#include <string>
#include <vector>

#include <rapidjson/document.h>

extern char** environ;

namespace launch_test {

class PythonServer {
 public:
  // Runs `/usr/bin/python3 script args...`; throws std::runtime_error naming
  // `what` when it cannot start or its first line is not a JSON object.
  PythonServer(const std::string& what, const std::string& script,
               const std::vector<std::string>& args) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0) throw std::runtime_error(what + ": pipe failed");
    if (::pipe2(out, O_CLOEXEC) != 0) {
      ::close(in[0]);
      ::close(in[1]);
      throw std::runtime_error(what + ": pipe failed");
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    std::vector<std::string> argv_s = {"/usr/bin/python3", script};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(&a[0]);
    argv.push_back(nullptr);
    int rc = posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(in[0]);
    ::close(out[1]);
    stdin_ = in[1];
    if (rc != 0) {
      ::close(out[0]);
      pid_ = -1;
      stop();
      throw std::runtime_error("cannot start /usr/bin/python3 for " + what);
    }
    std::string line;
    char c;
    while (::read(out[0], &c, 1) == 1 && c != '\n') line += c;
    ::close(out[0]);
    hello_.Parse(line.c_str());
    if (hello_.HasParseError() || !hello_.IsObject()) {
      stop();
      throw std::runtime_error(what + " did not start: \"" + line + "\"");
    }
  }
  ~PythonServer() { stop(); }
  PythonServer(const PythonServer&) = delete;
  PythonServer& operator=(const PythonServer&) = delete;

  // The JSON object of its first line.
  const rapidjson::Document& hello() const { return hello_; }
  // An integer member of it (a port); throws naming it when absent.
  int port(const char* name) const {
    if (!hello_.HasMember(name) || !hello_[name].IsInt()) {
      throw std::runtime_error(std::string("test server: no \"") + name + "\" in its first line");
    }
    return hello_[name].GetInt();
  }

  // Closes its stdin (it exits) and reaps it.
  void stop() {
    if (stdin_ >= 0) ::close(stdin_);
    stdin_ = -1;
    if (pid_ > 0) {
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  rapidjson::Document hello_;
};

}  // namespace launch_test

#endif
