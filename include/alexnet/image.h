// Image files to RGB pixels and back: what the data pipeline and alexnet-prep decode, resize
// and store. Pixels are 8-bit RGB, row-major, interleaved (H, W, 3).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "alexnet/error.h"

namespace alexnet {

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // (height, width, 3)
};

// A file that is not a decodable image. The message says why (truncated, not an image, ...)
// without the path; the caller knows the path and whether to skip the file or stop.
struct BadImage : Error {
  using Error::Error;
};

// JPEG (baseline or progressive; RGB, grayscale, CMYK or YCCK) or PNG (any bit depth, palette,
// grayscale, alpha dropped), recognised by content, not by name: ImageNet has a PNG named .JPEG.
// Throws BadImage for anything else, including truncated data.
Image decode_image(const uint8_t* data, size_t size);
// The same, but a JPEG is decoded at the smallest of libjpeg-turbo's scales M/8 (M = 1..7) whose
// output keeps the shorter side at `min_shorter_side` or more: the inverse DCT then produces the
// smaller image directly, for a fraction of the work. 0, a PNG, or a JPEG that no scale below 1
// keeps large enough: the full size.
Image decode_image(const uint8_t* data, size_t size, int min_shorter_side);
// The same into `out`, reusing its buffer: a decode thread that keeps one Image stops allocating
// (and the kernel stops zeroing fresh pages) once it has held its largest image.
void decode_image(const uint8_t* data, size_t size, int min_shorter_side, Image& out);
// The scale decode_image picks for a width x height JPEG: (M, 8), or (8, 8) for the full size.
std::pair<int, int> jpeg_dct_scale(int width, int height, int min_shorter_side);
// The same, straight into `rgb` (width x height x 3) for a caller that knows the size (the
// packed loader): a JPEG is decoded there without an intermediate image or copy. A file of
// another size is a BadImage too.
void decode_image_into(const uint8_t* data, size_t size, int width, int height, uint8_t* rgb);

// The paper's preprocessing: scale so the shorter side is `side` (area interpolation when
// shrinking, bilinear when enlarging), then take the central side x side square.
Image resize_shorter_and_center_crop(const Image& image, int side);
// The same into `out` (side, side, 3), with `scratch` for the scaled image (reused).
void resize_shorter_and_center_crop(const Image& image, int side, uint8_t* out,
                                    std::vector<uint8_t>& scratch);

// The (width, height) that resize_shorter_and_center_crop scales to before cropping: the shorter
// side becomes `side`, the longer one longer * side / shorter rounded to nearest (halves up).
std::pair<int, int> scaled_size(int width, int height, int side);

// Baseline JPEG, 4:2:0 below quality 90 and 4:4:4 from 90 up.
std::vector<uint8_t> encode_jpeg(const Image& image, int quality);

// The whole file; throws alexnet::Error naming the path and the reason.
std::vector<uint8_t> read_file(const std::string& path);
// The same into `bytes`, reusing its buffer.
void read_file(const std::string& path, std::vector<uint8_t>& bytes);

}  // namespace alexnet
