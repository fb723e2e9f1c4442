// A stand-in for ImageNet's JPEG files where ImageNet is not at hand: a class-per-folder tree of
// photo-like JPEGs with ImageNet's sizes and kinds, so the input pipeline can be measured (and
// trained on) with the work real data would cost. Written by `alexnet-prep synth-jpeg`.
#pragma once

#include <cstdint>
#include <string>

namespace alexnet {

struct SynthJpegOptions {
  std::string out;  // the tree's root: out/class000/img00000.JPEG, ...
  int classes = 10;
  int images_per_class = 100;
  uint64_t seed = 1;
  int workers = 2;
};

// What the tree holds: counts and bytes, for the caller to report.
struct SynthJpegSummary {
  int64_t images = 0, bytes = 0;
  int64_t progressive = 0, cmyk = 0, grayscale = 0, large = 0;  // large: shorter side >= 1000
};

// Each image is a pure function of (seed, class, index): its size, kind and pixels.
// - Sizes as ImageNet's: 90% with the shorter side in [333, 500] (about 70% of them landscape,
//   aspect 1.33, the rest square-ish or portrait), 10% larger, shorter side 1000-2000.
// - Kinds as ImageNet's, a little more often so a small tree has some: 2% progressive, 1% Adobe
//   CMYK, 2% grayscale; the rest baseline 4:2:0. Quality 90.
// - Pixels: smooth colour fields whose hue depends on the class, sharp-edged shapes and
//   sensor-like noise, so that the files are as large as photos (about 110 KB at 500 x 375).
// Writes files that are not there yet (a tree can be grown) and throws alexnet::Error naming a
// path it cannot write.
SynthJpegSummary write_synthetic_jpeg_tree(const SynthJpegOptions& options);

// One image of the tree as JPEG bytes.
std::string synthetic_jpeg(uint64_t seed, int cls, int index);

}  // namespace alexnet
