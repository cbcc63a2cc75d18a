# Installs the headers, both libraries, a CMake package (launch::launch,
# launch::launch_c) with a version file, launch.pc, and the Python module.
include(CMakePackageConfigHelpers)

set(LAUNCH_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/launch)
set(_launch_targets launch)
if(TARGET launch_c)
  list(APPEND _launch_targets launch_c)
endif()

install(TARGETS ${_launch_targets} EXPORT launchTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY include/launch DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        PATTERN "*.in" EXCLUDE)
install(FILES ${LAUNCH_GENERATED_INCLUDE_DIR}/launch/features.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/launch)
install(EXPORT launchTargets NAMESPACE launch:: DESTINATION ${LAUNCH_CMAKE_DIR})
# Build-tree export, for add_subdirectory/FetchContent users.
export(EXPORT launchTargets NAMESPACE launch::
       FILE ${PROJECT_BINARY_DIR}/launchTargets.cmake)

set(LAUNCH_CONFIG_BACKENDS "")
foreach(_name IN LISTS LAUNCH_BACKENDS)
  if(LAUNCH_WITH_${_name})
    string(APPEND LAUNCH_CONFIG_BACKENDS "set(LAUNCH_WITH_${_name} ON)\n")
  else()
    string(APPEND LAUNCH_CONFIG_BACKENDS "set(LAUNCH_WITH_${_name} OFF)\n")
  endif()
endforeach()
configure_package_config_file(cmake/launchConfig.cmake.in
  ${PROJECT_BINARY_DIR}/launchConfig.cmake INSTALL_DESTINATION ${LAUNCH_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/launchConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/launchConfig.cmake
              ${PROJECT_BINARY_DIR}/launchConfigVersion.cmake
        DESTINATION ${LAUNCH_CMAKE_DIR})

# pkg-config: directories relative to ${prefix}, so the tree can move.
# Libs.private: what liblaunch_c.so itself links, the backends' libraries
# only for those that are on.
set(_pc_libs -lsqlite3 -lyaml-cpp -lfmt ${LAUNCH_PC_LIBS_PRIVATE} -pthread)
string(REPLACE ";" " " LAUNCH_PC_LIBS_PRIVATE "${_pc_libs}")
set(LAUNCH_PC_LIBDIR "\${exec_prefix}/${CMAKE_INSTALL_LIBDIR}")
set(LAUNCH_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
configure_file(cmake/launch.pc.in ${PROJECT_BINARY_DIR}/launch.pc @ONLY)
# `cmake --install --prefix DIR` must write DIR into the installed file, not
# the prefix known at configure time: it is written again when installing.
install(CODE "
  set(PROJECT_VERSION [==[${PROJECT_VERSION}]==])
  set(LAUNCH_PC_LIBDIR [==[${LAUNCH_PC_LIBDIR}]==])
  set(LAUNCH_PC_INCLUDEDIR [==[${LAUNCH_PC_INCLUDEDIR}]==])
  set(LAUNCH_PC_LIBS_PRIVATE [==[${LAUNCH_PC_LIBS_PRIVATE}]==])
  configure_file([==[${PROJECT_SOURCE_DIR}/cmake/launch.pc.in]==]
                 [==[${PROJECT_BINARY_DIR}/pkgconfig-install/launch.pc]==] @ONLY)
")
install(FILES ${PROJECT_BINARY_DIR}/pkgconfig-install/launch.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The Python module (examples/python/launch), beside a generated
# _installed.py that names the installed C library by its full path, so
# `import launch` works from any prefix without LAUNCH_C_LIBRARY or ldconfig.
# The default is Debian's directory for system packages (prefix /usr); for
# another prefix set LAUNCH_INSTALL_PYTHONDIR to a directory on sys.path
# (e.g. lib/python3.11/dist-packages for /usr/local) or use PYTHONPATH.
if(TARGET launch_c)
  set(LAUNCH_INSTALL_PYTHONDIR "lib/python3/dist-packages" CACHE STRING
      "Where the Python module goes: relative to the install prefix, or absolute")
  install(DIRECTORY examples/python/launch DESTINATION ${LAUNCH_INSTALL_PYTHONDIR}
          FILES_MATCHING PATTERN "*.py" PATTERN "__pycache__" EXCLUDE)
  install(CODE "
    set(_dir [==[${LAUNCH_INSTALL_PYTHONDIR}]==])
    if(NOT IS_ABSOLUTE \"\${_dir}\")
      set(_dir \"\${CMAKE_INSTALL_PREFIX}/\${_dir}\")
    endif()
    set(_lib \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/$<TARGET_SONAME_FILE_NAME:launch_c>\")
    if(IS_ABSOLUTE [==[${CMAKE_INSTALL_LIBDIR}]==])
      set(_lib [==[${CMAKE_INSTALL_LIBDIR}/$<TARGET_SONAME_FILE_NAME:launch_c>]==])
    endif()
    message(STATUS \"Installing: \$ENV{DESTDIR}\${_dir}/launch/_installed.py\")
    file(WRITE \"\$ENV{DESTDIR}\${_dir}/launch/_installed.py\"
         \"# Written by cmake --install: the C library installed with this module.\\n\"
         \"LIBRARY = \\\"\${_lib}\\\"\\n\")
  ")
endif()
