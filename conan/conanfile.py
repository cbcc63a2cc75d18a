# Conan 2 recipe for launch. From the repository root:
#
#   conan create conan/ --build=missing
#
# Dependencies (SQLite, RapidJSON, yaml-cpp, fmt, and for the optional
# backends libpq, libcurl, libarchive, OpenSSL) are not Conan requirements:
# they come from the system's packages (Debian: scripts/setup), found by the
# project's own find_package() calls, like any other CMake build of launch.
#
# The options with_postgres, with_http, with_docker (needs with_http) and
# with_openssl are the LAUNCH_WITH_* options of CMakeLists.txt, e.g.
#
#   conan create conan/ -o "launch/*:with_docker=False" -o "launch/*:with_postgres=False"
import os
import re

from conan import ConanFile
from conan.errors import ConanInvalidConfiguration
from conan.tools.cmake import CMake, CMakeToolchain, cmake_layout
from conan.tools.files import copy, load


class LaunchConan(ConanFile):
    name = "launch"
    description = ("Job queues, agents and runners: an embeddable C++17 library with a "
                   "stable C ABI")
    license = "Apache-2.0"
    topics = ("jobs", "queue", "scheduler", "containers", "kubernetes")
    settings = "os", "arch", "compiler", "build_type"
    # Option -> (the CMake option, the system library it links).
    _backends = {
        "with_postgres": ("LAUNCH_WITH_POSTGRES", "pq"),
        "with_http": ("LAUNCH_WITH_HTTP", "curl"),
        "with_docker": ("LAUNCH_WITH_DOCKER", "archive"),
        "with_openssl": ("LAUNCH_WITH_OPENSSL", "crypto"),
    }
    options = {name: [True, False] for name in _backends}
    default_options = {name: True for name in _backends}

    def set_version(self):
        # The one version number lives in include/launch/version.hpp.
        text = load(self, os.path.join(self.recipe_folder, "..", "include", "launch",
                                       "version.hpp"))
        self.version = re.search(r'#define LAUNCH_VERSION_STRING "([^"]+)"', text).group(1)

    def export_sources(self):
        # The recipe sits in conan/; the sources are the tree above it.
        root = os.path.join(self.recipe_folder, "..")
        for pattern in ("CMakeLists.txt", "LICENSE", "cmake/*", "include/*", "src/*",
                        "capi/*"):
            copy(self, pattern, root, self.export_sources_folder)

    def validate(self):
        if self.options.with_docker and not self.options.with_http:
            raise ConanInvalidConfiguration("launch: with_docker=True needs with_http=True "
                                            "(the Docker engine API is spoken over HTTP)")

    def layout(self):
        cmake_layout(self)

    def generate(self):
        tc = CMakeToolchain(self)
        tc.cache_variables["LAUNCH_BUILD_TESTS"] = False
        tc.cache_variables["LAUNCH_BUILD_EXAMPLES"] = False
        tc.cache_variables["LAUNCH_BUILD_BENCH"] = False
        tc.cache_variables["LAUNCH_INSTALL"] = True
        for name, (cmake_option, _) in self._backends.items():
            tc.cache_variables[cmake_option] = bool(self.options.get_safe(name))
        tc.generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def package(self):
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))
        CMake(self).install()

    def package_info(self):
        # CMake consumers get the package's own launchConfig.cmake (targets
        # launch::launch and launch::launch_c, and the find_dependency() calls
        # for the system libraries) rather than a generated one.
        self.cpp_info.set_property("cmake_find_mode", "none")
        self.cpp_info.builddirs.append(os.path.join("lib", "cmake", "launch"))

        # For the other generators (PkgConfigDeps, MSBuildDeps, ...).
        cxx = self.cpp_info.components["launch"]
        cxx.libs = ["launch"]
        cxx.system_libs = ["sqlite3", "yaml-cpp", "fmt", "pthread"] + [
            lib for name, (_, lib) in self._backends.items() if self.options.get_safe(name)]
        cxx.set_property("cmake_target_name", "launch::launch")
        cxx.set_property("pkg_config_name", "launch-cxx")

        c = self.cpp_info.components["launch_c"]
        c.libs = ["launch_c"]
        c.requires = ["launch"]
        c.set_property("cmake_target_name", "launch::launch_c")
        c.set_property("pkg_config_name", "launch")
