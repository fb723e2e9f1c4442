// OpenCV's cv::imdecode, loaded at run time: alexnet-bench's reference JPEG decoder.
//
// Why not simply link it: the binaries are carried to machines (the GPU one) that must not get
// libopencv_imgcodecs, which drags in GDAL, OpenEXR and ~200 MB of other libraries (see the
// top-level CMakeLists.txt). So no binary links it; alexnet-bench opens it with dlopen when the
// machine has it and leaves the comparison out when it does not.
#pragma once

#include <opencv2/core.hpp>
#include <string>

namespace alexnet {

// The exact C++ type of cv::imdecode(InputArray buf, int flags).
using ImdecodeFn = cv::Mat (*)(const cv::_InputArray&, int);

struct OpenCvImdecode {
  ImdecodeFn imdecode = nullptr;  // null when it could not be loaded
  std::string library;            // the file name that was opened
  std::string error;              // why not, when imdecode is null
};

// Opens libopencv_imgcodecs of the OpenCV version alexnet was compiled against (a different
// version could disagree about cv::Mat), or the file $ALEXNET_OPENCV_IMGCODECS names, and looks
// up cv::imdecode. Never throws; the library
// stays loaded for the life of the process, as the Mats it returns may outlive any scope.
OpenCvImdecode load_opencv_imdecode();

// cv::IMREAD_COLOR, the flag for 8-bit BGR output (from the header; see the .cpp).
int imread_color_flag();

}  // namespace alexnet
