// Momentum SGD with weight decay, exactly the paper's rule, and its learning-rate schedule.
#pragma once

#include "alexnet/config.h"
#include "alexnet/net.h"

namespace alexnet {

// v <- momentum*v - weight_decay*lr*w - lr*grad;  w <- w + v   (every Param of the net).
// Biases are decayed only when optim.decay_biases is set. With optim.method lars, each weight
// tensor's lr is multiplied by its trust ratio lars_eta * |w| / (|grad| + weight_decay * |w|)
// (You et al. 2017; 1 when a norm is zero); biases keep the plain lr.
void sgd_step(Net& net, const Config::Optim& optim, double lr);

// The schedule's state: what a checkpoint must carry so a resumed run drops the LR when the
// straight run would have.
struct LrState {
  double lr = 0;
  double plateau_best = 2.0;  // best val top-1 error that counted as an improvement (2 = none)
  int bad_epochs = 0;         // epochs since then
  int drops = 0;              // how many times the LR was divided
};

LrState initial_lr_state(const Config::Optim& optim);
// The LR of step `step` (0-based, counted over the whole run) given the schedule's `lr`: during
// the warm-up, W = optim.warmup_epochs * steps_per_epoch steps (rounded, at least 1; none for 0
// epochs), it is lr * (s + (1 - s) * (step + 1) / W) with s = optim.warmup_start. Then lr, or
// under the poly schedule lr * (1 - (step - W) / (schedule_steps - W))^poly_power (You et al.
// 2017), never below optim.min_lr; schedule_steps is train.epochs * steps_per_epoch. A pure
// function of the step, so a resumed run needs nothing more in its checkpoint.
double lr_at_step(const Config::Optim& optim, double lr, int64_t step, int64_t steps_per_epoch,
                  int64_t schedule_steps);
// After validation of `epoch` (1-based): plateau divides the LR when the val top-1 error has not
// fallen by min_delta for more than `patience` epochs (PyTorch's ReduceLROnPlateau counting);
// step divides it after each epoch listed in step_epochs; poly never (lr_at_step decays it).
// Returns true when the LR dropped.
bool update_lr_after_epoch(const Config::Optim& optim, int epoch, double val_top1_error,
                           LrState& state);

}  // namespace alexnet
