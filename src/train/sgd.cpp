#include "alexnet/sgd.h"

#include <algorithm>

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
      tensors.push_back({&p.value, &p.momentum, &p.grad, decay});
    }
    ops::sgd_update_all(lr, optim.momentum, tensors);
  }
}

LrState initial_lr_state(const Config::Optim& optim) {
  LrState s;
  s.lr = optim.lr;
  return s;
}

bool update_lr_after_epoch(const Config::Optim& optim, int epoch, double val_top1_error,
                           LrState& state) {
  bool drop = false;
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
