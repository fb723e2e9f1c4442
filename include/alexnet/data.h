// Datasets, input statistics and the batch loader.
//
// A data source yields uint8 RGB images (S, S, 3) with integer labels; the loader turns a batch
// of them into the network's input: (pixel - mean) * scale, NCHW, in the net's element type.
// The order of every epoch is a pure function of (seed, epoch), so a resumed run sees exactly
// the samples the straight run would have.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "alexnet/config.h"
#include "alexnet/tensor.h"

namespace alexnet {

class DataSource {
 public:
  virtual ~DataSource() = default;
  virtual int64_t size() const = 0;
  virtual int image_size() const = 0;  // S
  // Class ids in label order (ImageNet: the sorted wnids), and human-readable names where known
  // (same length; a name may equal its id).
  virtual const std::vector<std::string>& classes() const = 0;
  virtual const std::vector<std::string>& class_names() const { return classes(); }
  // Fills image (S, S, 3) RGB 0-255 and returns the label. Thread-safe. Throws BadImage
  // (alexnet/image.h) for a file that cannot be decoded: the loader skips and counts it.
  virtual int32_t load(int64_t index, uint8_t* image) const = 0;
  // What names sample `index` in messages: its path, or "synthetic #index".
  virtual std::string describe(int64_t index) const { return "#" + std::to_string(index); }
};

enum class Split { train, val };

// Labelled images generated from (seed, index): class c is an oriented colour grating of its
// own frequency, each image a randomly shifted, scaled copy with Gaussian pixel noise.
std::unique_ptr<DataSource> make_synthetic_source(const Config& config, Split split);
// The source a config names (only "synthetic" exists until the JPEG pipeline lands).
std::unique_ptr<DataSource> make_source(const Config& config, Split split);

// Per-pixel mean image and the RGB covariance's eigen-decomposition (for PCA lighting).
struct DataStats {
  int size = 0;               // S
  std::vector<float> mean;    // (3, S, S), 0-255
  std::vector<float> eigval;  // (3), descending
  std::vector<float> eigvec;  // (3, 3), columns are the eigenvectors (RGB)
};
DataStats compute_stats(const DataSource& source, int64_t max_images, int workers);
DataStats load_stats(const std::string& path);  // a safetensors file with data.mean, data.pca_*

// The epoch's order: a permutation of [0, size) from (seed, epoch).
std::vector<int64_t> epoch_order(uint64_t seed, int epoch, int64_t size);

// Fills images (capacity, 3, S, S) with the given samples, ready for the net, and labels.
// `workers` threads load in parallel; the result does not depend on their number.
void load_batch(const DataSource& source, const DataStats& stats, double scale,
                const int64_t* indices, int n, int workers, Tensor& images, int32_t* labels);

}  // namespace alexnet
