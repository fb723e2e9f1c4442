#include "alexnet/sgd.h"

#include <algorithm>
#include <cmath>

namespace alexnet {

void sgd_step(Net& net, const Config::Optim& optim, double lr) {
  // One update per device (a tower's parameters live on its device).
  std::vector<Device> distinct;
  for (const Device& d : net.devices())
    if (std::find(distinct.begin(), distinct.end(), d) == distinct.end()) distinct.push_back(d);
  for (const Device& device : distinct) {
    std::vector<ops::SgdTensor> tensors;
    for (auto& p : net.params()) {
      if (!(p.value.device() == device)) continue;
      const double decay = (p.is_bias && !optim.decay_biases) ? 0.0 : optim.weight_decay;
      // LARS adapts the weights' steps only; biases keep the plain one (You et al. 2017).
      const double lars_eta = (optim.method == "lars" && !p.is_bias) ? optim.lars_eta : 0.0;
      tensors.push_back({&p.value, &p.momentum, &p.grad, decay, lars_eta});
    }
    ops::sgd_update_all(lr, optim.momentum, tensors);
  }
}

double lr_at_step(const Config::Optim& optim, double lr, int64_t step, int64_t steps_per_epoch,
                  int64_t schedule_steps) {
  const int64_t warmup_steps =
      optim.warmup_epochs <= 0
          ? 0
          : std::max<int64_t>(
                1, std::llround(optim.warmup_epochs * static_cast<double>(steps_per_epoch)));
  if (step + 1 < warmup_steps) {
    const double s = optim.warmup_start;
    return lr * (s + (1 - s) * static_cast<double>(step + 1) / static_cast<double>(warmup_steps));
  }
  if (optim.schedule != "poly" || step < warmup_steps) return lr;
  // The warm-up's last step reaches lr; the decay starts from it on the next.
  const int64_t decay_steps = std::max<int64_t>(1, schedule_steps - warmup_steps);
  const double left = std::max(
      0.0, 1.0 - static_cast<double>(step - warmup_steps) / static_cast<double>(decay_steps));
  return std::max(lr * std::pow(left, optim.poly_power), optim.min_lr);
}

LrState initial_lr_state(const Config::Optim& optim) {
  LrState s;
  s.lr = optim.lr;
  return s;
}

bool update_lr_after_epoch(const Config::Optim& optim, int epoch, double val_top1_error,
                           LrState& state) {
  bool drop = false;
  if (optim.schedule == "poly") return false;  // lr_at_step decays it step by step
  if (optim.schedule == "step") {
    drop = std::find(optim.step_epochs.begin(), optim.step_epochs.end(), epoch) !=
           optim.step_epochs.end();
  } else if (val_top1_error < state.plateau_best - optim.min_delta) {
    state.plateau_best = val_top1_error;
    state.bad_epochs = 0;
  } else if (++state.bad_epochs > optim.patience) {
    drop = true;
    state.bad_epochs = 0;
  }
  if (!drop) return false;
  const double next = std::max(state.lr * optim.lr_factor, optim.min_lr);
  if (next >= state.lr) return false;  // already at the floor
  state.lr = next;
  ++state.drops;
  return true;
}

}  // namespace alexnet
