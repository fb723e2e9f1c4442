// The input pipeline on a GPU: a loader made for cuda:0 stages in pinned memory, uploads on its
// own stream and augments with the fused kernel; every batch must equal what a CPU loader makes
// from the same samples (the same kernels/augment.cuh arithmetic on both sides), including two
// loaders taking turns as the prefetcher runs them, the ten test crops, and the prefetcher itself.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "alexnet/config.h"
#include "alexnet/data.h"
#include "alexnet/error.h"
#include "kernels/augment.cuh"
#include "src/train/prefetch.h"
#include "tests/gpu/gpu_test_util.h"

namespace alexnet {
namespace {

const Device kGpu{Device::Kind::cuda, 0};

struct Pipeline {
  Config config;
  std::unique_ptr<DataSource> source;
  DataStats stats;
  int B = 16;
  Pipeline() {
    config.data.synthetic.train_images = 100;
    config.data.image_size = 40;
    config.model.input_size = 32;
    config.data.batch_size = B;
    config.data.workers = 2;
    config.data.scale = 0.5;
    source = make_source(config, Split::train);
    stats = compute_stats(*source, 64, 1);
  }
  Tensor images(Device d) const { return Tensor({B, 3, 32, 32}, DType::f32, d); }
};

// The GPU tensor against the CPU one: max |gpu - cpu| / (1 + |cpu|) <= 1e-6 over n samples.
void expect_same(const Tensor& cpu, const Tensor& gpu, int n, const std::string& what) {
  const Tensor got = gpu.to(Device{});
  const int64_t count = cpu.numel() / cpu.dim(0) * n;
  double worst = 0;
  for (int64_t i = 0; i < count; ++i) {
    const float a = cpu.data<float>()[i], b = got.data<float>()[i];
    ASSERT_TRUE(std::isfinite(b)) << what << ": element " << i << " is " << b;
    worst = std::max(worst, std::abs(double{a} - double{b}) / (1.0 + std::abs(double{a})));
  }
  EXPECT_LE(worst, 1e-6) << what;
}

// Two loaders per side taking turns, as the prefetcher does: batch k decodes into loader k % 2,
// the GPU one uploads at once (before the previous batch is augmented), then each augments.
TEST(InputGpu, TrainingBatchesMatchTheCpuWithTwoLoadersTakingTurns) {
  AX_REQUIRE_GPU();
  Pipeline s;
  BatchLoader cpu0(*s.source, s.stats, s.config, s.B), cpu1(*s.source, s.stats, s.config, s.B);
  BatchLoader gpu0(*s.source, s.stats, s.config, s.B, kGpu),
      gpu1(*s.source, s.stats, s.config, s.B, kGpu);
  BatchLoader* cpu[] = {&cpu0, &cpu1};
  BatchLoader* gpu[] = {&gpu0, &gpu1};
  Tensor host = s.images(Device{}), device = s.images(kGpu);
  AX_CUDA_CHECK(cudaMemset(device.raw(), 0xFF, device.nbytes()));  // NaN: unwritten shows
  const auto order = epoch_order(s.config.seed, 3, s.source->size());
  std::vector<int32_t> labels_cpu(static_cast<size_t>(s.B)), labels_gpu(labels_cpu);
  gpu[0]->decode(order.data(), s.B, labels_gpu.data());
  gpu[0]->upload();
  for (int k = 0; k < 5; ++k) {
    const int n = k == 4 ? 7 : s.B;  // a short last batch too
    const int64_t* next = order.data() + (k + 1) * s.B;
    if (k + 1 < 5) {  // the next batch uploads while this one is still to be augmented
      gpu[(k + 1) % 2]->decode(next, s.B, labels_gpu.data());
      gpu[(k + 1) % 2]->upload();
    }
    cpu[k % 2]->decode(order.data() + k * s.B, s.B, labels_cpu.data());
    cpu[k % 2]->augment_train(n, 3, host);
    gpu[k % 2]->augment_train(n, 3, device);
    expect_same(host, device, n, "batch " + std::to_string(k));
  }
}

TEST(InputGpu, TenCropsFromOneUploadMatchTheCpu) {
  AX_REQUIRE_GPU();
  Pipeline s;
  BatchLoader cpu(*s.source, s.stats, s.config, s.B), gpu(*s.source, s.stats, s.config, s.B, kGpu);
  std::vector<int64_t> indices(static_cast<size_t>(s.B));
  for (int i = 0; i < s.B; ++i) indices[static_cast<size_t>(i)] = 3 * i + 1;
  std::vector<int32_t> labels(static_cast<size_t>(s.B));
  cpu.decode(indices.data(), s.B, labels.data());
  gpu.decode(indices.data(), s.B, labels.data());
  Tensor host = s.images(Device{}), device = s.images(kGpu);
  for (int k = 0; k < 10; ++k) {
    const auto crop = kernels::ten_crop(k, 40, 32);
    cpu.augment_fixed(s.B, crop, host);
    gpu.augment_fixed(s.B, crop, device);
    expect_same(host, device, s.B, "crop " + std::to_string(k));
  }
}

// Images staged one by one (alexnet-predict), then restaged for a second batch.
TEST(InputGpu, StagedImagesMatchTheCpu) {
  AX_REQUIRE_GPU();
  Pipeline s;
  BatchLoader cpu(*s.source, s.stats, s.config, 4), gpu(*s.source, s.stats, s.config, 4, kGpu);
  std::vector<uint8_t> image(40 * 40 * 3);
  Tensor host({4, 3, 32, 32}), device({4, 3, 32, 32}, DType::f32, kGpu);
  for (int batch = 0; batch < 2; ++batch) {
    for (int slot = 0; slot < 3; ++slot) {
      s.source->load(batch * 10 + slot, image.data());
      cpu.stage(slot, image.data());
      gpu.stage(slot, image.data());
    }
    cpu.augment_fixed(3, center_crop(40, 32), host);
    gpu.augment_fixed(3, center_crop(40, 32), device);
    expect_same(host, device, 3, "staged batch " + std::to_string(batch));
  }
}

TEST(InputGpu, ACropOutsideTheImageIsRefusedBeforeTheKernel) {
  AX_REQUIRE_GPU();
  Pipeline s;
  BatchLoader gpu(*s.source, s.stats, s.config, s.B, kGpu);
  std::vector<int64_t> indices(static_cast<size_t>(s.B), 0);
  std::vector<int32_t> labels(static_cast<size_t>(s.B));
  gpu.decode(indices.data(), s.B, labels.data());
  Tensor device = s.images(kGpu);
  AugmentSample bad;
  bad.x0 = 9;  // 40 - 32 = 8 is the last valid offset
  std::string message;
  try {
    gpu.augment_fixed(s.B, bad, device);
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("outside the 40 x 40 image"), std::string::npos) << message;
}

// The prefetcher for a GPU (what alexnet-train runs) against the prefetcher for the CPU.
TEST(InputGpu, PrefetcherForTheGpuMatchesTheCpu) {
  AX_REQUIRE_GPU();
  Pipeline s;
  const int64_t per_epoch = s.source->size() / s.B;
  Prefetcher on_cpu(*s.source, s.stats, s.config, s.B, per_epoch, Device{});
  Prefetcher on_gpu(*s.source, s.stats, s.config, s.B, per_epoch, kGpu);
  Tensor host = s.images(Device{}), device = s.images(kGpu);
  for (int epoch = 0; epoch < 2; ++epoch)
    for (int64_t b = 0; b < per_epoch; ++b) {
      const auto c = on_cpu.get(epoch, b, true);
      const auto g = on_gpu.get(epoch, b, true);
      for (int i = 0; i < s.B; ++i) ASSERT_EQ(c.labels[i], g.labels[i]);
      c.loader.augment_train(s.B, epoch, host);
      g.loader.augment_train(s.B, epoch, device);
      expect_same(host, device, s.B,
                  "epoch " + std::to_string(epoch) + " batch " + std::to_string(b));
    }
}

}  // namespace
}  // namespace alexnet
