# Run by ctest (tests/install/CMakeLists.txt passes the variables):
#   1. cmake --install BUILD_DIR into WORK_DIR/prefix;
#   2. the generated launch/features.h is installed as built; launch.pc
#      exists, `pkg-config --cflags launch` names the prefix's include
#      directory (PKG_CONFIG_PATH pointing into the prefix), and its
#      Libs.private names the libraries of the backends that are on;
#   3. configure, build and run the consumer project against the prefix
#      (C++ through launch::launch, C through launch::launch_c), and build
#      and run its C program again with pkg-config's flags alone;
#   4. the installed Python module imports from the prefix and loads the
#      prefix's C library with no LAUNCH_C_LIBRARY or LD_LIBRARY_PATH.
# Leaves nothing behind: the prefix and the consumer's build are removed at
# the start and, on success, at the end.
cmake_minimum_required(VERSION 3.16)

set(prefix ${WORK_DIR}/prefix)
set(consumer_build ${WORK_DIR}/consumer-build)
file(REMOVE_RECURSE ${prefix} ${consumer_build} ${WORK_DIR}/launch_consumer_pc)

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install test: ${what} failed (${rc}):\n${out}")
  endif()
  message(STATUS "install test: ${what}: ok")
  set(run_output "${out}" PARENT_SCOPE)
endfunction()

if(NOT BUILD_TYPE)
  set(BUILD_TYPE RelWithDebInfo)
endif()
run("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --config ${BUILD_TYPE}
                      --prefix ${prefix})

# ---- the generated header: installed, and the one the build used
set(features ${prefix}/include/launch/features.h)
if(NOT EXISTS ${features})
  message(FATAL_ERROR "install test: ${features} was not installed")
endif()
file(READ ${features} installed_features)
file(READ ${BUILD_DIR}/include/launch/features.h built_features)
if(NOT installed_features STREQUAL built_features)
  message(FATAL_ERROR "install test: ${features} differs from the build's")
endif()
if(EXISTS ${prefix}/include/launch/features.h.in)
  message(FATAL_ERROR "install test: the template features.h.in was installed")
endif()

# ---- pkg-config
set(pc ${prefix}/${LIBDIR}/pkgconfig/launch.pc)
if(NOT EXISTS ${pc})
  message(FATAL_ERROR "install test: ${pc} was not installed")
endif()
find_program(PKG_CONFIG_EXECUTABLE NAMES pkg-config pkgconf REQUIRED)
set(ENV{PKG_CONFIG_PATH} ${prefix}/${LIBDIR}/pkgconfig)
run("pkg-config --cflags launch" ${PKG_CONFIG_EXECUTABLE} --cflags launch)
string(STRIP "${run_output}" cflags)
if(NOT cflags STREQUAL "-I${prefix}/include")
  message(FATAL_ERROR "install test: pkg-config --cflags launch gave \"${cflags}\", "
                      "expected \"-I${prefix}/include\"")
endif()
# Libs.private names the libraries of the backends that are on, no others.
run("pkg-config --static --libs launch" ${PKG_CONFIG_EXECUTABLE} --static --libs launch)
foreach(pair "POSTGRES;-lpq" "HTTP;-lcurl" "DOCKER;-larchive" "OPENSSL;-lcrypto")
  list(GET pair 0 feature)
  list(GET pair 1 flag)
  string(FIND "${run_output}" " ${flag}" at)
  if(installed_features MATCHES "LAUNCH_FEATURE_${feature} 1")
    if(at EQUAL -1)
      message(FATAL_ERROR "install test: launch.pc lacks ${flag}: ${run_output}")
    endif()
  elseif(NOT at EQUAL -1)
    message(FATAL_ERROR "install test: launch.pc has ${flag}, but ${feature} is off: ${run_output}")
  endif()
endforeach()
run("pkg-config --modversion launch" ${PKG_CONFIG_EXECUTABLE} --modversion launch)
string(STRIP "${run_output}" pc_version)
if(NOT pc_version STREQUAL VERSION)
  message(FATAL_ERROR "install test: launch.pc says version ${pc_version}, expected ${VERSION}")
endif()

# ---- find_package consumer
run("configure the consumer"
    ${CMAKE_COMMAND} -S ${CONSUMER_SOURCE} -B ${consumer_build} -G ${GENERATOR}
    -DCMAKE_BUILD_TYPE=${BUILD_TYPE}
    -DCMAKE_C_COMPILER=${C_COMPILER} -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
    "-DCMAKE_CXX_FLAGS=${EXTRA_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${EXTRA_FLAGS}"
    -DCMAKE_PREFIX_PATH=${prefix}
    # Only the prefix: a launch installed elsewhere on the machine must not
    # be found instead.
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF
    -Dlaunch_ROOT=${prefix} -DLAUNCH_EXPECTED_PREFIX=${prefix})
run("build the consumer" ${CMAKE_COMMAND} --build ${consumer_build})
run("run the consumer" ${consumer_build}/launch_consumer)
message(STATUS "${run_output}")
if(EXISTS ${prefix}/${LIBDIR}/liblaunch_c.so)
  if(NOT EXISTS ${consumer_build}/launch_consumer_c)
    message(FATAL_ERROR "install test: liblaunch_c.so is installed but launch::launch_c "
                        "did not give the consumer project its C program")
  endif()
  run("run the C consumer (launch::launch_c)" ${consumer_build}/launch_consumer_c)
  message(STATUS "${run_output}")
endif()

# ---- a C program built with pkg-config's flags alone
run("pkg-config --cflags --libs launch" ${PKG_CONFIG_EXECUTABLE} --cflags --libs launch)
string(STRIP "${run_output}" pc_flags)
separate_arguments(pc_flags UNIX_COMMAND "${pc_flags}")
separate_arguments(extra UNIX_COMMAND "${EXTRA_FLAGS}")
run("cc main.c $(pkg-config --cflags --libs launch)"
    ${C_COMPILER} ${extra} ${CONSUMER_SOURCE}/main.c ${pc_flags}
    -Wl,-rpath,${prefix}/${LIBDIR} -o ${WORK_DIR}/launch_consumer_pc)
run("run the pkg-config C consumer" ${WORK_DIR}/launch_consumer_pc)
message(STATUS "${run_output}")

# ---- the Python module
if(PYTHON_DIR)
  find_program(PYTHON3 python3)
  if(NOT PYTHON3)
    message(FATAL_ERROR "install test: python3 not found (scripts/setup installs it)")
  endif()
  set(pydir ${PYTHON_DIR})
  if(NOT IS_ABSOLUTE ${pydir})
    set(pydir ${prefix}/${pydir})
  endif()
  unset(ENV{LAUNCH_C_LIBRARY})
  unset(ENV{LD_LIBRARY_PATH})
  set(ENV{PYTHONPATH} ${pydir})
  run("python: import launch from the prefix" ${PYTHON3} -c [==[
import os, sys
import launch
from launch import _installed
pydir, prefix, version = sys.argv[1:4]
assert launch.__file__.startswith(pydir + "/"), launch.__file__
assert _installed.LIBRARY.startswith(prefix + "/"), _installed.LIBRARY
assert launch.version() == version, (launch.version(), version)
with launch.Transport("memory://") as t:
    q = t.create_queue({"name": "q", "entity": "me", "resource": "local-process"})
    assert q.push(name="hello", entry_point=["echo", "hi"])
]==] ${pydir} ${prefix} ${VERSION})
endif()

file(REMOVE_RECURSE ${prefix} ${consumer_build} ${WORK_DIR}/launch_consumer_pc)
