# ALEXNET_PORTABLE: a build that runs on the lent GPU machine (README, "Development"). That machine
# has the CUDA libraries (inside its Python packages) but none of Debian's, and what travels
# there is limited to 64 MiB. Used by `cmake --preset device` (build-device/), made ready to
# carry by tools/device-build.sh, run there by tools/device-check.sh.
#
# Included by CMakeLists.txt *before* it looks for its dependencies: this file makes the names
# CMakeLists.txt links (OPENBLAS_LIBRARY, OPENCV_*_LIBRARY, ZLIB::ZLIB, fmt, ...) point at what
# the portable build wants, so the rest of CMakeLists.txt reads the same in both builds. That
# works because find_library() and the Find modules skip their search when the variable is
# already set, and the config files CMake generates (fmt's) return early when their targets
# exist. Archives are named by full path: nvcc reorders -Xlinker -Bstatic, so flags are no use.
#
# The layout (why it is not simply "everything static"):
#   bin/libalexnet_core.so  alexnet_core as ONE shared library, holding the static archives of
#       OpenBLAS (+ GCC's libgfortran/libquadmath), OpenCV core + imgproc, and our CUDA code.
#       Debian's OpenBLAS is built for every x86 CPU (DYNAMIC_ARCH): sgemm's dispatch table alone
#       pulls ~25 MB of kernels into whatever links it. In each of ~30 executables that was
#       ~800 MB; in one shared library it is once. Its symbols (the archives' too: cblas_sgemm,
#       cudaMalloc, ...) stay exported, so an executable that calls them directly resolves them
#       there instead of linking a second copy.
#   lib/libyaml-cpp.so.0.7, libpng16.so.16, libturbojpeg.so.0, libz.so.1 (~1.5 MB together):
#       Debian's archives of these four are compiled for executables only (PC32 relocations
#       against libstdc++/libc data or their own globals, local-exec TLS), which a shared library
#       cannot hold; so their shared libraries are linked, and copied into lib/ with the other
#       small ones (tools/device-build.sh: libtbb, libGL, ... whatever `ldd` shows beyond the
#       libraries the device has).
#   bin/  also the executables, with $ORIGIN (for libalexnet_core.so) and $ORIGIN/../lib in their
#       run path. (Not libalexnet_core.so in lib/: CMake would put lib/ in the run path itself and
#       warn that the copies there may hide the system's libraries, which is the point.)
# What is left to the device: libcudart, libcudnn, libcublas(Lt), libnccl (cuDNN alone is
# ~480 MB; the runtime is shared for the reason in _ax_finish_portable) and
# libc/libm/libstdc++/libgcc_s.

set(_ax_lib_dirs /usr/lib/x86_64-linux-gnu /usr/lib)

# A static archive by its file name; the configure step fails when it is missing.
function(_ax_archive var file)
  find_library(${var} NAMES ${file} PATHS ${_ax_lib_dirs} NO_DEFAULT_PATH REQUIRED)
endfunction()

# An IMPORTED static target NAME for ARCHIVE; further arguments are what it needs at link time.
function(_ax_static_target name archive)
  add_library(${name} STATIC IMPORTED GLOBAL)
  set_target_properties(${name} PROPERTIES IMPORTED_LOCATION "${archive}"
                                           INTERFACE_LINK_LIBRARIES "${ARGN}")
endfunction()

find_package(Threads REQUIRED)

# ------------------------------------------------------------------------- static archives
_ax_archive(AX_OPENCV_CORE_A libopencv_core.a)
_ax_archive(AX_OPENCV_IMGPROC_A libopencv_imgproc.a)
_ax_archive(AX_OPENBLAS_A libopenblas.a)  # Debian's alternative: the pthread build
# OpenBLAS's archive references libgfortran (its LAPACK half is Fortran), which the device may
# lack: link GCC's own archives of it and of libquadmath, which libgfortran uses.
foreach(_name gfortran quadmath)
  execute_process(COMMAND ${CMAKE_CXX_COMPILER} -print-file-name=lib${_name}.a
                  OUTPUT_VARIABLE _path OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT IS_ABSOLUTE "${_path}" OR NOT EXISTS "${_path}")
    message(FATAL_ERROR "ALEXNET_PORTABLE: lib${_name}.a not found (Debian: libgfortran-12-dev)")
  endif()
  string(TOUPPER "AX_${_name}_A" _var)
  set(${_var} ${_path})
endforeach()

_ax_static_target(alexnet_portable::openblas ${AX_OPENBLAS_A} ${AX_GFORTRAN_A} ${AX_QUADMATH_A}
                  Threads::Threads m)
# OpenCV's core: TBB runs its parallel_for (cv::resize uses it), libGL its OpenGL interop
# (never called here, but referenced), zlib its persistence code, dlopen its plugins.
_ax_static_target(alexnet_portable::opencv_core ${AX_OPENCV_CORE_A} tbb GL z ${CMAKE_DL_LIBS}
                  Threads::Threads)
_ax_static_target(alexnet_portable::opencv_imgproc ${AX_OPENCV_IMGPROC_A}
                  alexnet_portable::opencv_core)

# ------------------------------------------------------------------- what CMakeLists.txt links
# find_library(VAR ...) is skipped when VAR is set, and target_link_libraries takes a target name
# as readily as a path.
set(OPENBLAS_LIBRARY alexnet_portable::openblas)
set(OPENCV_CORE_LIBRARY alexnet_portable::opencv_core)
set(OPENCV_IMGPROC_LIBRARY alexnet_portable::opencv_imgproc)
# Shared, and carried (see the top).
find_library(TURBOJPEG_LIBRARY NAMES libturbojpeg.so.0 turbojpeg REQUIRED)
# yaml-cpp, libpng and zlib: find_package() gives Debian's shared ones, as in the default build.

# spdlog's header-only target still links fmt::fmt, Debian's shared libfmt: make both of fmt's
# targets header-only (FMT_HEADER_ONLY compiles fmt's few non-template functions inline).
find_path(AX_FMT_INCLUDE_DIR NAMES fmt/format.h REQUIRED)
foreach(_t fmt::fmt fmt::fmt-header-only)
  add_library(${_t} INTERFACE IMPORTED GLOBAL)
  set_target_properties(${_t} PROPERTIES INTERFACE_COMPILE_DEFINITIONS FMT_HEADER_ONLY=1
                                         INTERFACE_INCLUDE_DIRECTORIES ${AX_FMT_INCLUDE_DIR})
endforeach()

# ------------------------------------------------------------------------- the CUDA runtime
# Shared, found on the device like cuBLAS (why: _ax_finish_portable below). This covers what
# CMake adds for targets with CUDA code; alexnet_cuda's own CUDA::cudart_static is swapped there.
set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)

# ------------------------------------------------------------------------- layout
set(ALEXNET_CORE_TYPE SHARED)  # read by CMakeLists.txt's add_library(alexnet_core ...)
set(CMAKE_POSITION_INDEPENDENT_CODE ON)  # alexnet_cuda's objects go into that shared library
set(CMAKE_RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
set(CMAKE_LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
set(CMAKE_BUILD_RPATH_USE_ORIGIN ON)  # bin/ as $ORIGIN, not as this machine's absolute path
set(CMAKE_BUILD_RPATH "\$ORIGIN/../lib")
# A symbol the shared library leaves undefined would only fail when it loads, on the device:
# make it fail here, at link time.
add_link_options($<$<STREQUAL:$<TARGET_PROPERTY:TYPE>,SHARED_LIBRARY>:LINKER:--no-undefined>)

# At the end of the top-level CMakeLists.txt, once the targets exist:
#  - the whole of alexnet_cuda (our kernels and CUDA ops) into libalexnet_core.so, so that no
#    executable links a second copy of an op the core happens not to call yet. (alexnet_cuda's
#    later mention on the link line then adds nothing: an archive member is only taken for a
#    symbol still undefined.)
#  - the shared CUDA runtime instead of CUDA::cudart_static. The static runtime's symbols are
#    hidden, so libalexnet_core.so and every executable that calls the runtime itself (the GPU
#    tests do) would each hold a runtime of their own: two per process, each with its own
#    current device and last error. The default build links everything into one executable and
#    has one; with the shared libcudart.so.13 (the device has it beside cuBLAS) so has this one.
function(_ax_finish_portable)
  if(NOT TARGET alexnet_cuda)
    return()
  endif()
  foreach(_prop LINK_LIBRARIES INTERFACE_LINK_LIBRARIES)
    get_target_property(_libs alexnet_cuda ${_prop})
    if(_libs)
      list(TRANSFORM _libs REPLACE "^CUDA::cudart_static$" "CUDA::cudart")
      set_property(TARGET alexnet_cuda PROPERTY ${_prop} "${_libs}")
    endif()
  endforeach()
  target_link_options(alexnet_core PRIVATE LINKER:--whole-archive $<TARGET_FILE:alexnet_cuda>
                      LINKER:--no-whole-archive)
endfunction()
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL _ax_finish_portable)
