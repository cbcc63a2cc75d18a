/* launch — the one export macro, shared by the C and C++ headers. */
#ifndef LAUNCH_EXPORT_H
#define LAUNCH_EXPORT_H

#if defined(_WIN32)
#  if defined(LAUNCH_COMPILE_LIBRARY)
#    define LAUNCH_EXPORT __declspec(dllexport)
#  elif defined(LAUNCH_SHARED_LIBRARY)
#    define LAUNCH_EXPORT __declspec(dllimport)
#  else
#    define LAUNCH_EXPORT
#  endif
#else
#  if defined(LAUNCH_COMPILE_LIBRARY)
#    define LAUNCH_EXPORT __attribute__((visibility("default")))
#  else
#    define LAUNCH_EXPORT
#  endif
#endif

#endif
