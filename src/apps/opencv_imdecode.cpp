// See opencv_imdecode.h for why cv::imdecode is loaded with dlopen rather than linked.
#include "src/apps/opencv_imdecode.h"

#include <dlfcn.h>

#include <cstdlib>
#include <opencv2/core/version.hpp>
#include <string>
#include <type_traits>
#include <vector>

// Declarations only (cv::imdecode's signature, cv::IMREAD_COLOR): calling cv::imdecode directly
// would need libopencv_imgcodecs at link time, which is exactly what must not happen.
#include <opencv2/imgcodecs.hpp>

namespace alexnet {
namespace {

// The Itanium-ABI name of cv::imdecode(cv::_InputArray const&, int) (`nm -D` shows it). The
// static_cast below fails to compile if the header's overload differs from ImdecodeFn; it is
// unevaluated, so it references no symbol.
constexpr const char* kImdecodeSymbol = "_ZN2cv8imdecodeERKNS_11_InputArrayEi";
static_assert(std::is_same_v<decltype(static_cast<ImdecodeFn>(&cv::imdecode)), ImdecodeFn>);
constexpr const char* kVersionMajorSymbol = "_ZN2cv15getVersionMajorEv";
constexpr const char* kVersionMinorSymbol = "_ZN2cv15getVersionMinorEv";

std::string str(int v) {
  return std::to_string(v);
}

// The names this OpenCV's imgcodecs goes by, most specific first: the soname of recent OpenCV 4
// builds (Debian's libopencv_imgcodecs.so.406 for 4.6), the older "4.6" form, the full version,
// and the unversioned development link as a last resort (checked for its version after); or
// the one file $ALEXNET_OPENCV_IMGCODECS names.
std::vector<std::string> candidate_names() {
  // Set: that file only. Tests point it at a missing file to see the benchmark do without.
  if (const char* chosen = std::getenv("ALEXNET_OPENCV_IMGCODECS")) return {chosen};
  const std::string base = "libopencv_imgcodecs.so";
  const int major = CV_VERSION_MAJOR, minor = CV_VERSION_MINOR;
  const std::string so_version = str(major) + (minor < 10 ? "0" : "") + str(minor);
  return {base + "." + so_version, base + "." + str(major) + "." + str(minor),
          base + "." + CV_VERSION, base};
}

// dlerror() as a string: it returns null when there was no error to report.
std::string last_dl_error() {
  const char* e = dlerror();
  return e ? e : "unknown error";
}

// The OpenCV core that the opened imgcodecs uses must be the one alexnet was compiled against:
// cv::Mat's layout and allocator are shared between the two.
std::string version_mismatch(void* handle) {
  using VersionFn = int (*)();
  const auto major = reinterpret_cast<VersionFn>(dlsym(handle, kVersionMajorSymbol));
  const auto minor = reinterpret_cast<VersionFn>(dlsym(handle, kVersionMinorSymbol));
  if (!major || !minor) return "cannot tell its OpenCV version (" + last_dl_error() + ")";
  if (major() == CV_VERSION_MAJOR && minor() == CV_VERSION_MINOR) return "";
  return "it is OpenCV " + str(major()) + "." + str(minor()) + ", alexnet was built against " +
         CV_VERSION;
}

}  // namespace

OpenCvImdecode load_opencv_imdecode() {
  OpenCvImdecode result;
  const auto names = candidate_names();
  void* handle = nullptr;
  std::string first_error;
  for (const auto& name : names) {
    handle = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle) {
      result.library = name;
      break;
    }
    if (first_error.empty()) first_error = last_dl_error();
  }
  if (!handle) {
    result.error = "cannot load OpenCV's imgcodecs (tried";
    for (const auto& name : names) result.error += " " + name;
    result.error += "): " + first_error;
    return result;
  }
  // The handle is never closed: Mats decoded by the library may live until the process ends.
  if (const std::string why = version_mismatch(handle); !why.empty()) {
    result.error = result.library + ": " + why;
    return result;
  }
  result.imdecode = reinterpret_cast<ImdecodeFn>(dlsym(handle, kImdecodeSymbol));
  if (!result.imdecode)
    result.error = result.library + " has no cv::imdecode(InputArray, int): " + last_dl_error();
  return result;
}

int imread_color_flag() {
  return cv::IMREAD_COLOR;
}

}  // namespace alexnet
