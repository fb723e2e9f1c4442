#include <algorithm>
#include <cmath>
#include <numeric>

#include "alexnet/dist.h"
#include "alexnet/error.h"
#include "alexnet/train.h"
#include "kernels/augment.cuh"

namespace alexnet {
namespace {

// Adds the net's softmax for n samples into sum (n, K), in double.
void accumulate_probs(const Net& net, int n, std::vector<double>& sum) {
  const Tensor p = net.probs().to(Device{});  // a host copy when the net is on a GPU
  const int64_t k = p.dim(1);
  for (int64_t i = 0; i < n * k; ++i)
    sum[static_cast<size_t>(i)] +=
        p.dtype() == DType::f64 ? p.data<double>()[i] : double{p.data<float>()[i]};
}

}  // namespace

EvalResult evaluate(Net& net, const DataSource& source, const DataStats& stats,
                    const Config& config, int crops) {
  if (crops != 1 && crops != 10) throw Error("--crops must be 1 or 10");
  const int B = net.batch_capacity(), S = net.input_size(), K = net.num_classes();
  // On a GPU the batch is uploaded once and each crop is cut from it there.
  BatchLoader loader(source, stats, config, B, net.device());
  Tensor images({B, 3, S, S}, net.dtype(), net.device());
  std::vector<int32_t> labels(static_cast<size_t>(B));
  std::vector<int64_t> indices(static_cast<size_t>(B));
  std::vector<double> probs(static_cast<size_t>(B) * K);
  EvalResult r;
  r.class_images.assign(static_cast<size_t>(K), 0);
  r.class_top1_errors.assign(static_cast<size_t>(K), 0);
  int64_t top1 = 0, top5 = 0;
  double loss_sum = 0;
  const dist::World& world = dist::world();
  for (int64_t first = int64_t{world.rank} * B; first < source.size();
       first += int64_t{world.size} * B) {
    const int n = static_cast<int>(std::min<int64_t>(B, source.size() - first));
    std::iota(indices.begin(), indices.begin() + n, first);
    auto bad = loader.decode(indices.data(), n, labels.data());
    r.skipped.insert(r.skipped.end(), bad.begin(), bad.end());
    std::fill(probs.begin(), probs.end(), 0.0);
    for (int k = 0; k < crops; ++k) {
      const auto crop = crops == 1 ? center_crop(source.image_size(), loader.crop())
                                   : kernels::ten_crop(k, source.image_size(), loader.crop());
      loader.augment_fixed(n, crop, images);
      net.forward(images, labels.data(), n, false, 0, 0);
      accumulate_probs(net, n, probs);
    }
    for (int i = 0; i < n; ++i) {
      const double* p = probs.data() + static_cast<size_t>(i) * K;
      const int32_t label = labels[static_cast<size_t>(i)];
      const double mine = p[label] / crops;
      // Ties count in the sample's favour, as in the softmax op's top-k.
      int above = 0;
      for (int c = 0; c < K; ++c) above += p[c] / crops > mine;
      loss_sum += -std::log(std::max(mine, 1e-300));
      top1 += above < 1;
      top5 += above < 5;
      ++r.class_images[static_cast<size_t>(label)];
      r.class_top1_errors[static_cast<size_t>(label)] += above >= 1;
    }
    r.images += n;
  }
  if (world.size > 1) {
    // images, loss, top-1, top-5, then per class images and errors: exact in double (counts
    // far below 2^53); the loss is summed in rank order.
    std::vector<double> sums = {static_cast<double>(r.images), loss_sum, static_cast<double>(top1),
                                static_cast<double>(top5)};
    for (int c = 0; c < K; ++c) {
      sums.push_back(static_cast<double>(r.class_images[static_cast<size_t>(c)]));
      sums.push_back(static_cast<double>(r.class_top1_errors[static_cast<size_t>(c)]));
    }
    dist::allreduce_sum(sums.data(), static_cast<int64_t>(sums.size()), "the validation's counts");
    auto count = [&](size_t i) { return static_cast<int64_t>(std::llround(sums[i])); };
    r.images = count(0);
    loss_sum = sums[1];
    top1 = count(2);
    top5 = count(3);
    for (size_t c = 0; c < static_cast<size_t>(K); ++c) {
      r.class_images[c] = count(4 + 2 * c);
      r.class_top1_errors[c] = count(5 + 2 * c);
    }
  }
  if (r.images == 0) throw Error("evaluation set is empty");
  const double n = static_cast<double>(r.images);
  r.loss = loss_sum / n;
  r.top1_error = 1.0 - static_cast<double>(top1) / n;
  r.top5_error = 1.0 - static_cast<double>(top5) / n;
  return r;
}

}  // namespace alexnet
