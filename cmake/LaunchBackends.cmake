# Backends that can be left out of a build. One launch_backend() call per
# backend (CMakeLists.txt) gives it:
#   - an option LAUNCH_WITH_<NAME>, ON by default when its package is found
#     and the backends it REQUIRES are on; set ON explicitly without them,
#     configure fails saying what is missing;
#   - its SOURCES (globs relative to the project, searched recursively, so a
#     directory still being filled builds as it is), compiled into
#     launch::launch only when it is on, and its LIBS linked then;
#   - LAUNCH_FEATURE_<NAME> 0 or 1 in the generated launch/features.h;
#   - a find_dependency() in launchConfig.cmake and PC_LIBS in launch.pc's
#     Libs.private, only when it is on.
#
#   launch_backend(<NAME> "<what it builds>"
#                  [PACKAGE <find_package arguments>...]
#                  [REQUIRES <other backend>...]
#                  [LIBS <link target>...] [PC_LIBS <-lname>...]
#                  [SOURCES <glob>...])
#
# It sets, in the caller's scope:
#   LAUNCH_BACKENDS             every backend's NAME, in order
#   LAUNCH_BACKEND_SOURCES      the sources of the backends that are on
#   LAUNCH_BACKEND_ALL_SOURCES  the sources of every backend (not core's)
#   LAUNCH_BACKEND_LIBS         the link targets of the backends that are on
#   LAUNCH_FEATURE_DEFINES      the body of launch/features.h
#   LAUNCH_CONFIG_DEPENDENCIES  find_dependency() lines for launchConfig.cmake
#   LAUNCH_PC_LIBS_PRIVATE      -l flags for launch.pc
#   LAUNCH_WITH_<NAME>          the option (a cache variable)
include_guard(GLOBAL)

function(launch_backend name description)
  cmake_parse_arguments(PARSE_ARGV 2 B "" "" "PACKAGE;REQUIRES;LIBS;PC_LIBS;SOURCES")
  if(B_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "launch_backend(${name}): unexpected arguments ${B_UNPARSED_ARGUMENTS}")
  endif()
  set(_option LAUNCH_WITH_${name})

  # What is missing for it, for the default and for the error message. A
  # backend switched off is not even looked for.
  set(_missing)
  if(B_PACKAGE)
    list(GET B_PACKAGE 0 _package)
    string(REPLACE ";" " " _wanted "${B_PACKAGE}")
    if(CMAKE_DISABLE_FIND_PACKAGE_${_package})
      list(APPEND _missing "CMAKE_DISABLE_FIND_PACKAGE_${_package} is set")
    elseif(NOT DEFINED ${_option} OR ${_option})
      find_package(${B_PACKAGE} QUIET)
      if(NOT ${_package}_FOUND)
        list(APPEND _missing "find_package(${_wanted}) found nothing")
      endif()
    endif()
  endif()
  foreach(_req IN LISTS B_REQUIRES)
    if(NOT DEFINED LAUNCH_WITH_${_req})
      message(FATAL_ERROR "launch_backend(${name}): REQUIRES ${_req}, which is not declared "
                          "before it")
    endif()
    if(NOT LAUNCH_WITH_${_req})
      list(APPEND _missing "it needs LAUNCH_WITH_${_req}, which is OFF")
    endif()
  endforeach()
  set(_default ON)
  if(_missing)
    set(_default OFF)
  endif()
  option(${_option} "Build ${description}" ${_default})
  if(${_option} AND _missing)
    string(REPLACE ";" "; " _why "${_missing}")
    message(FATAL_ERROR "${_option} (${description}) is ON, but ${_why}. Provide what it "
                        "needs (scripts/setup installs every library) or configure with "
                        "-D${_option}=OFF.")
  endif()
  if(NOT ${_option})
    if(_missing)
      string(REPLACE ";" "; " _why "${_missing}")
    else()
      set(_why "-D${_option}=OFF")
    endif()
    set(LAUNCH_BACKEND_WHY_OFF_${name} "${_why}" PARENT_SCOPE)
  endif()

  set(_sources)
  foreach(_glob IN LISTS B_SOURCES)
    file(GLOB_RECURSE _found CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/${_glob})
    list(APPEND _sources ${_found})
  endforeach()
  list(FILTER _sources INCLUDE REGEX "\\.(c|cpp)$")

  set(LAUNCH_BACKENDS ${LAUNCH_BACKENDS} ${name} PARENT_SCOPE)
  set(LAUNCH_BACKEND_ALL_SOURCES ${LAUNCH_BACKEND_ALL_SOURCES} ${_sources} PARENT_SCOPE)
  if(${_option})
    set(LAUNCH_BACKEND_SOURCES ${LAUNCH_BACKEND_SOURCES} ${_sources} PARENT_SCOPE)
    set(LAUNCH_BACKEND_LIBS ${LAUNCH_BACKEND_LIBS} ${B_LIBS} PARENT_SCOPE)
    set(LAUNCH_PC_LIBS_PRIVATE ${LAUNCH_PC_LIBS_PRIVATE} ${B_PC_LIBS} PARENT_SCOPE)
    if(B_PACKAGE)
      string(REPLACE ";" " " _args "${B_PACKAGE}")
      string(APPEND LAUNCH_CONFIG_DEPENDENCIES "find_dependency(${_args})\n")
      set(LAUNCH_CONFIG_DEPENDENCIES "${LAUNCH_CONFIG_DEPENDENCIES}" PARENT_SCOPE)
    endif()
    string(APPEND LAUNCH_FEATURE_DEFINES "#define LAUNCH_FEATURE_${name} 1  /* ${description} */\n")
  else()
    string(APPEND LAUNCH_FEATURE_DEFINES "#define LAUNCH_FEATURE_${name} 0  /* ${description} */\n")
  endif()
  set(LAUNCH_FEATURE_DEFINES "${LAUNCH_FEATURE_DEFINES}" PARENT_SCOPE)
endfunction()

# One line at configure time: which backends this build has.
function(launch_backend_summary)
  set(_on)
  set(_off)
  foreach(_name IN LISTS LAUNCH_BACKENDS)
    string(TOLOWER ${_name} _lower)
    if(LAUNCH_WITH_${_name})
      list(APPEND _on ${_lower})
    else()
      list(APPEND _off "${_lower} (${LAUNCH_BACKEND_WHY_OFF_${_name}})")
    endif()
  endforeach()
  string(REPLACE ";" " " _on "${_on}")
  string(REPLACE ";" ", " _off "${_off}")
  if(NOT _on)
    set(_on "(none)")
  endif()
  if(NOT _off)
    set(_off "(none)")
  endif()
  message(STATUS "launch backends on: ${_on}; off: ${_off}")
endfunction()
