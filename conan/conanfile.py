# Conan 2 recipe for launch. From the repository root:
#
#   conan create conan/ --build=missing
#
# Dependencies (libcurl, SQLite, libpq, libarchive, RapidJSON, yaml-cpp, fmt)
# are not Conan requirements: they come from the system's packages (Debian:
# scripts/setup), found by the project's own find_package() calls, like any
# other CMake build of launch.
import os
import re

from conan import ConanFile
from conan.tools.cmake import CMake, CMakeToolchain, cmake_layout
from conan.tools.files import copy, load


class LaunchConan(ConanFile):
    name = "launch"
    description = ("Job queues, agents and runners: an embeddable C++17 library with a "
                   "stable C ABI")
    license = "Apache-2.0"
    topics = ("jobs", "queue", "scheduler", "containers", "kubernetes")
    settings = "os", "arch", "compiler", "build_type"

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

    def layout(self):
        cmake_layout(self)

    def generate(self):
        tc = CMakeToolchain(self)
        tc.cache_variables["LAUNCH_BUILD_TESTS"] = False
        tc.cache_variables["LAUNCH_BUILD_EXAMPLES"] = False
        tc.cache_variables["LAUNCH_BUILD_BENCH"] = False
        tc.cache_variables["LAUNCH_INSTALL"] = True
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
        cxx.system_libs = ["curl", "sqlite3", "pq", "archive", "yaml-cpp", "fmt", "pthread"]
        cxx.set_property("cmake_target_name", "launch::launch")
        cxx.set_property("pkg_config_name", "launch-cxx")

        c = self.cpp_info.components["launch_c"]
        c.libs = ["launch_c"]
        c.requires = ["launch"]
        c.set_property("cmake_target_name", "launch::launch_c")
        c.set_property("pkg_config_name", "launch")
