#include <algorithm>
#include <numeric>

#include "alexnet/error.h"
#include "alexnet/train.h"

namespace alexnet {

EvalResult evaluate(Net& net, const DataSource& source, const DataStats& stats, double scale,
                    int workers) {
  const int B = net.batch_capacity(), S = net.input_size();
  Tensor images({B, 3, S, S}, net.dtype());
  std::vector<int32_t> labels(static_cast<size_t>(B));
  std::vector<int64_t> indices(static_cast<size_t>(B));
  EvalResult r;
  int64_t top1 = 0, top5 = 0;
  double loss_sum = 0;
  for (int64_t first = 0; first < source.size(); first += B) {
    const int n = static_cast<int>(std::min<int64_t>(B, source.size() - first));
    std::iota(indices.begin(), indices.begin() + n, first);
    load_batch(source, stats, scale, indices.data(), n, workers, images, labels.data());
    const auto x = net.forward(images, labels.data(), n, false, 0, 0);
    loss_sum += x.loss_sum;
    top1 += x.top1;
    top5 += x.top5;
    r.images += n;
  }
  if (r.images == 0) throw Error("evaluation set is empty");
  const double n = static_cast<double>(r.images);
  r.loss = loss_sum / n;
  r.top1_error = 1.0 - static_cast<double>(top1) / n;
  r.top5_error = 1.0 - static_cast<double>(top5) / n;
  return r;
}

void check_device(const std::string& device, const std::string& option) {
  if (device == "auto") return;
  const Device d = Device::parse(device);
  if (!d.is_cpu())
    throw Error(option + " = '" + device +
                "': the CUDA backend is not part of this build yet; use cpu or auto");
}

}  // namespace alexnet
