// Datasets, input statistics and the batch loader.
//
// A data source yields uint8 RGB images (S, S, 3) with integer labels; the loader turns a batch
// of them into the network's input: (pixel - mean) * scale, NCHW, in the net's element type.
// The order of every epoch is a pure function of (seed, epoch), so a resumed run sees exactly
// the samples the straight run would have.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "alexnet/config.h"
#include "alexnet/op_params.h"
#include "alexnet/safetensors.h"
#include "alexnet/tensor.h"

namespace alexnet {

namespace gpu {
class InputStage;  // src/cuda/input_stage.h
}

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
  // (Appended, not "#" + s: GCC 12 at -O3 warns falsely about the latter, -Wrestrict.)
  virtual std::string describe(int64_t index) const {
    return std::string("#").append(std::to_string(index));
  }
  // Read-ahead advice: samples [first, first + count) will be loaded soon. A packed source has
  // the kernel read their bytes as one block (posix_fadvise WILLNEED), so that the loads that
  // follow find them in the page cache; other sources ignore it.
  virtual void will_load(int64_t /*first*/, int64_t /*count*/) const {}
};

enum class Split { train, val };

// Labelled images generated from (seed, index): class c is an oriented colour grating of its
// own frequency, each image a randomly shifted, scaled copy with Gaussian pixel noise.
std::unique_ptr<DataSource> make_synthetic_source(const Config& config, Split split);
// A JPEG tree: data.train / data.val with a folder per class, or a flat data.val with
// data.val_labels. `classes` fixes the class list (a checkpoint's); null: the sorted class
// folders of data.train. A val label outside the classes is an error naming the file.
std::unique_ptr<DataSource> make_folder_source(const Config& config, Split split,
                                               const std::vector<std::string>* classes);
// The source a config names.
std::unique_ptr<DataSource> make_source(const Config& config, Split split,
                                        const std::vector<std::string>* classes = nullptr);

// A sample that could not be used (an undecodable, truncated or unreadable file).
struct BadSample {
  int64_t index = 0;
  std::string path, reason;
};

// Per-pixel mean image and the RGB covariance's eigen-decomposition (for PCA lighting).
struct DataStats {
  int size = 0;               // S
  std::vector<float> mean;    // (3, S, S), 0-255
  std::vector<float> eigval;  // (3), descending: eigenvalues of the covariance of 0-255 RGB
  std::vector<float> eigvec;  // (3, 3), columns are the eigenvectors (RGB)
  int64_t images = 0;         // how many images they were computed from
  std::vector<BadSample> skipped;
};
// Over every image of the source, or `max_images` spread evenly over it; undecodable files
// are skipped and listed. progress(done, total) is called now and then.
DataStats compute_stats(const DataSource& source, int64_t max_images, int workers,
                        const std::function<void(int64_t, int64_t)>& progress = {});
DataStats load_stats(const std::string& path);  // a safetensors file with data.mean, data.pca_*
void save_stats(const std::string& path, const DataStats& stats);
// The same three tensors inside any safetensors file (a checkpoint carries them too); `origin`
// names the file in errors. The views borrow the stats' memory.
DataStats stats_from(const SafetensorsFile& file, const std::string& origin);
std::vector<SafetensorsView> stats_views(const DataStats& stats);

// A uniform permutation of [0, size) drawn from Philox (seed, counter, stream): the same on every
// machine. (rng_streams.h lists the streams.)
std::vector<int64_t> random_permutation(uint64_t seed, int counter, uint32_t stream, int64_t size);
// The epoch's order: a uniform permutation of [0, size) from (seed, epoch).
std::vector<int64_t> epoch_order(uint64_t seed, int epoch, int64_t size);
// A permutation of [0, size) for data read in blocks: [0, size) cut into chunks of `chunk`
// consecutive indices (the last may be shorter), the chunks in an order drawn from (seed, epoch),
// and the indices of every `window` consecutive chunks of that order shuffled together. Every
// index once per epoch; a window's indices come from its `window` chunks only.
std::vector<int64_t> quasi_random_order(uint64_t seed, int epoch, int64_t size, int64_t chunk,
                                        int64_t window);
// The training order data.order names, for a training set of `size` samples.
std::vector<int64_t> training_order(const Config& config, int epoch, int64_t size);

// Turns dataset samples into network input. decode() loads a batch of uint8 images in parallel
// into a staging buffer; a bad file is skipped and the next good sample in dataset order takes
// its place, so a batch stays full and the result never depends on the thread count. augment()
// then makes the float input: random crops, flips and PCA lighting for training, drawn from
// (seed, epoch, sample index), or a fixed crop (centre, or one of the ten) for evaluation.
//
// A loader made for a GPU (`device` cuda:N) stages in pinned host memory and augments on that
// GPU into a tensor there (src/cuda/input_stage.h): upload() starts the copy as soon as a batch
// is decoded, and augment() queues the fused kernel behind it, so neither waits for the GPU.
// Its augment() also accepts a host tensor (then it runs on the CPU, as a CPU loader's does).
class BatchLoader {
 public:
  BatchLoader(const DataSource& source, const DataStats& stats, const Config& config, int capacity,
              Device device = {});
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // Stages samples indices[0..n) and fills labels; returns the bad files met (each is also
  // remembered, so that later batches skip it without reading it again).
  std::vector<BadSample> decode(const int64_t* indices, int n, int32_t* labels);
  // The same one image at a time, for a pool of decode threads that moves on across batches
  // (src/train/prefetch.h): begin_batch(n) first; then decode_one(slot, index, ...) for every
  // slot in [0, n), from any threads, each slot once, which stages the sample `index` (or the
  // next good one) and appends the bad files it met to `bad`; end_batch(n) after the last.
  void begin_batch(int n);
  void decode_one(int slot, int64_t index, int32_t* label, std::vector<BadSample>& bad);
  void end_batch(int n);
  // Stages an image decoded elsewhere, (S, S, 3), into slot `slot` (alexnet-predict's files).
  void stage(int slot, const uint8_t* image);
  // A GPU loader: starts copying the staged batch to the device (augment() does it otherwise).
  // Any thread; nothing for a CPU loader.
  void upload();
  // The staged batch, augmented for training in `epoch`: out (n, 3, crop, crop), on the CPU or
  // on the loader's GPU.
  void augment_train(int n, int epoch, Tensor& out) const;
  // A CPU loader: the same for the one image staged in `slot`, into out's slot `slot` (out
  // (capacity, 3, crop, crop), F32 on the CPU), on the calling thread: a decode thread augments
  // each image right after decoding it (src/train/prefetch.h). Slot by slot it computes exactly
  // what augment_train computes for the batch.
  void augment_train_one(int slot, int epoch, Tensor& out) const;
  // The staged batch with the same crop for every sample (AugmentSample: centre, or
  // kernels::ten_crop(k)), no lighting.
  void augment_fixed(int n, const AugmentSample& crop, Tensor& out) const;
  int crop() const { return crop_; }
  Device device() const { return device_; }

 private:
  void augment(int n, const AugmentSample* samples, Tensor& out) const;
  // The training augmentation of the image staged in `slot`, drawn from (seed, epoch, the
  // index of the sample staged there).
  AugmentSample train_sample(int slot, int epoch) const;

  const DataSource& source_;
  const DataStats& stats_;
  const Config& config_;
  int capacity_, size_, crop_;
  Device device_;
  std::shared_ptr<gpu::InputStage> stage_;  // a GPU loader's pinned staging and its upload
  std::vector<uint8_t> host_staged_;        // a CPU loader's staging
  uint8_t* staged_ = nullptr;               // (capacity, S, S, 3): one of the two above
  int staged_count_ = 0;                    // slots [0, staged_count_) hold images
  mutable bool uploaded_ = false;           // the GPU copy is the staged batch
  std::vector<int64_t> staged_index_;       // the sample actually staged in each slot
  std::vector<char> known_bad_;             // per sample index: skipped before
  std::mutex known_bad_mutex_;              // decode_one runs on many threads
};

// The centre crop of an S x S image.
AugmentSample center_crop(int size, int crop);

}  // namespace alexnet
