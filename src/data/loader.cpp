#include <algorithm>
#include <mutex>

#include "alexnet/cpu_ops.h"
#include "alexnet/data.h"
#include "alexnet/error.h"
#include "alexnet/image.h"
#include "alexnet/thread_pool.h"
#include "kernels/augment.cuh"
#ifdef ALEXNET_HAVE_CUDA
#include "src/cuda/input_stage.h"
#endif

namespace alexnet {

AugmentSample center_crop(int size, int crop) {
  AugmentSample s;
  s.x0 = s.y0 = (size - crop) / 2;
  return s;
}

BatchLoader::BatchLoader(const DataSource& source, const DataStats& stats, const Config& config,
                         int capacity, Device device)
    : source_(source),
      stats_(stats),
      config_(config),
      capacity_(capacity),
      size_(source.image_size()),
      crop_(config.crop()),
      device_(device) {
  if (crop_ > size_)
    throw Error("the crop (" + std::to_string(crop_) + ") is larger than the stored images (" +
                std::to_string(size_) + "x" + std::to_string(size_) +
                "): check data.crop, model.input_size and data.image_size");
  if (stats.size != size_)
    throw Error("input statistics are for " + std::to_string(stats.size) + "x" +
                std::to_string(stats.size) + " images, the data has " + std::to_string(size_) +
                "x" + std::to_string(size_));
  const size_t image_bytes = static_cast<size_t>(3) * size_ * size_;
  if (device_.is_cpu()) {
    host_staged_.resize(static_cast<size_t>(capacity) * image_bytes);
    staged_ = host_staged_.data();
  } else {
#ifdef ALEXNET_HAVE_CUDA
    stage_ = std::make_shared<gpu::InputStage>(device_.index, capacity, image_bytes,
                                               stats.mean.data(), stats.mean.size());
    staged_ = stage_->host_images();
#else
    throw Error("a batch loader for " + device_.str() +
                ": not built with CUDA (configure with -DALEXNET_CUDA=ON), use device cpu");
#endif
  }
  staged_index_.resize(static_cast<size_t>(capacity));
  known_bad_.assign(static_cast<size_t>(source.size()), 0);
}

BatchLoader::~BatchLoader() = default;

std::vector<BadSample> BatchLoader::decode(const int64_t* indices, int n, int32_t* labels) {
  begin_batch(n);
  std::mutex mutex;
  std::vector<BadSample> bad;
  parallel_for(n, config_.data.workers, [&](int64_t i) {
    std::vector<BadSample> met;
    decode_one(static_cast<int>(i), indices[i], labels + i, met);
    if (met.empty()) return;
    std::lock_guard lock(mutex);
    bad.insert(bad.end(), met.begin(), met.end());
  });
  end_batch(n);
  std::sort(bad.begin(), bad.end(),
            [](const BadSample& a, const BadSample& b) { return a.index < b.index; });
  return bad;
}

void BatchLoader::begin_batch(int n) {
  if (n > capacity_) throw std::logic_error("batch larger than the loader's capacity");
#ifdef ALEXNET_HAVE_CUDA
  if (stage_) stage_->wait_host_free();  // the last upload may still read the staged images
#endif
  uploaded_ = false;
  staged_count_ = 0;
}

void BatchLoader::decode_one(int slot, int64_t index, int32_t* label, std::vector<BadSample>& bad) {
  const size_t image_bytes = static_cast<size_t>(3) * size_ * size_;
  const int64_t count = source_.size();
  // known_bad_ is shared by the threads: read and written under the lock, and a file two
  // threads both found bad (two slots walking onto it) is reported once.
  auto known_bad = [&](int64_t i) {
    std::lock_guard lock(known_bad_mutex_);
    return known_bad_[static_cast<size_t>(i)] != 0;
  };
  // Walk forward in dataset order past bad samples: deterministic, whoever runs it.
  for (int64_t tries = 0; tries < count; ++tries, index = (index + 1) % count) {
    if (known_bad(index)) continue;
    try {
      *label = source_.load(index, staged_ + static_cast<size_t>(slot) * image_bytes);
      staged_index_[static_cast<size_t>(slot)] = index;
      return;
    } catch (const BadImage& e) {
      std::lock_guard lock(known_bad_mutex_);
      if (known_bad_[static_cast<size_t>(index)] == 0) {
        known_bad_[static_cast<size_t>(index)] = 1;
        bad.push_back({index, source_.describe(index), e.what()});
      }
    }
  }
  throw Error("not one image of the dataset could be decoded");
}

void BatchLoader::end_batch(int n) {
  staged_count_ = n;
}

void BatchLoader::stage(int slot, const uint8_t* image) {
  if (slot < 0 || slot >= capacity_) throw std::logic_error("slot outside the loader's capacity");
#ifdef ALEXNET_HAVE_CUDA
  if (stage_ && uploaded_) stage_->wait_host_free();
#endif
  uploaded_ = false;
  const size_t bytes = static_cast<size_t>(3) * size_ * size_;
  std::copy(image, image + bytes, staged_ + static_cast<size_t>(slot) * bytes);
  staged_index_[static_cast<size_t>(slot)] = -1;
  staged_count_ = std::max(staged_count_, slot + 1);
}

void BatchLoader::upload() {
#ifdef ALEXNET_HAVE_CUDA
  if (!stage_ || uploaded_) return;
  stage_->upload(staged_count_);
  uploaded_ = true;
#endif
}

void BatchLoader::augment(int n, const AugmentSample* samples, Tensor& out) const {
  const AugmentGeom g{n, size_, crop_, config_.data.scale};
  if (n > staged_count_) throw std::logic_error("augmenting more images than are staged");
  if (out.device().is_cpu()) {
    if (out.dtype() == DType::f64)
      cpu::augment_batch<double>(g, staged_, stats_.mean.data(), samples, out.data<double>());
    else
      cpu::augment_batch<float>(g, staged_, stats_.mean.data(), samples, out.data<float>());
    return;
  }
  if (out.device() != device_ || out.dtype() != DType::f32)
    throw std::logic_error("a loader for " + device_.str() + " asked to augment into a " +
                           dtype_name(out.dtype()) + " tensor on " + out.device().str());
#ifdef ALEXNET_HAVE_CUDA
  if (!uploaded_) {  // not started early by upload(): the copy goes first in the queue
    stage_->upload(staged_count_);
    uploaded_ = true;
  }
  stage_->augment(g, samples, out.data<float>());
#endif
}

AugmentSample BatchLoader::train_sample(int slot, int epoch) const {
  const auto& a = config_.augment;
  // The paper's shift sum_i alpha_i lambda_i p_i is stated for pixels in [0, 1] (the reference
  // values everyone uses, lambda = 0.2175, 0.0188, 0.0045, are eigenvalues on that scale). Our
  // eigenvalues are of 0-255 pixels (x 255^2) and the shift is added in 0-255 units (x 255),
  // so lambda / 255 here. Taken literally on 0-255 pixels, alpha = 0.1 would shift by hundreds.
  const float eigval[3] = {stats_.eigval[0] / 255.0f, stats_.eigval[1] / 255.0f,
                           stats_.eigval[2] / 255.0f};
  return kernels::draw_augment(config_.seed, static_cast<uint64_t>(epoch),
                               static_cast<uint32_t>(staged_index_[static_cast<size_t>(slot)]),
                               size_, crop_, a.crop == "random", a.flip,
                               static_cast<float>(a.lighting), eigval, stats_.eigvec.data());
}

void BatchLoader::augment_train(int n, int epoch, Tensor& out) const {
  std::vector<AugmentSample> samples(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) samples[static_cast<size_t>(i)] = train_sample(i, epoch);
  augment(n, samples.data(), out);
}

void BatchLoader::augment_train_one(int slot, int epoch, Tensor& out) const {
  if (!out.device().is_cpu() || out.dtype() != DType::f32 || out.shape().size() != 4 ||
      out.shape()[0] < capacity_ || out.shape()[1] != 3 || out.shape()[2] != crop_ ||
      out.shape()[3] != crop_)
    throw std::logic_error(
        "augment_train_one: out must be (capacity, 3, crop, crop) F32 on the CPU");
  const AugmentGeom g{1, size_, crop_, config_.data.scale};
  const AugmentSample sample = train_sample(slot, epoch);
  g.check_samples(&sample);
  const auto image_bytes = static_cast<size_t>(3) * size_ * size_;
  cpu::augment_image<float>(g, staged_ + static_cast<size_t>(slot) * image_bytes,
                            stats_.mean.data(), sample,
                            out.data<float>() + static_cast<int64_t>(slot) * 3 * crop_ * crop_);
}

void BatchLoader::augment_fixed(int n, const AugmentSample& crop, Tensor& out) const {
  const std::vector<AugmentSample> samples(static_cast<size_t>(n), crop);
  augment(n, samples.data(), out);
}

}  // namespace alexnet
