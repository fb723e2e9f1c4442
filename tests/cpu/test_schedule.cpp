// The optimizer around the per-element SGD kernel: which parameters are decayed, when the
// learning-rate schedules divide the rate, and the warm-up.
#include <gtest/gtest.h>

#include "alexnet/sgd.h"

namespace alexnet {
namespace {

Config::Optim plateau(int patience, double min_delta) {
  Config::Optim o;
  o.schedule = "plateau";
  o.patience = patience;
  o.min_delta = min_delta;
  return o;
}

TEST(Schedule, PlateauDropsAfterPatienceEpochsWithoutImprovement) {
  const auto o = plateau(1, 0.01);
  LrState s = initial_lr_state(o);
  EXPECT_EQ(s.lr, 0.01);
  EXPECT_FALSE(update_lr_after_epoch(o, 1, 0.50, s));   // first value: an improvement
  EXPECT_FALSE(update_lr_after_epoch(o, 2, 0.45, s));   // better by 0.05
  EXPECT_FALSE(update_lr_after_epoch(o, 3, 0.445, s));  // better by less than min_delta: 1 bad
  EXPECT_TRUE(update_lr_after_epoch(o, 4, 0.46, s));    // 2 bad epochs > patience 1: divide
  EXPECT_DOUBLE_EQ(s.lr, 0.001);
  EXPECT_EQ(s.drops, 1);
  EXPECT_EQ(s.bad_epochs, 0);
  EXPECT_FALSE(update_lr_after_epoch(o, 5, 0.43, s));  // better than 0.45 by > min_delta
  EXPECT_DOUBLE_EQ(s.plateau_best, 0.43);
}

TEST(Schedule, PlateauPatienceZeroDropsOnTheFirstBadEpoch) {
  const auto o = plateau(0, 0.0);
  LrState s = initial_lr_state(o);
  update_lr_after_epoch(o, 1, 0.5, s);
  EXPECT_TRUE(update_lr_after_epoch(o, 2, 0.5, s));
  EXPECT_TRUE(update_lr_after_epoch(o, 3, 0.5, s));
  EXPECT_NEAR(s.lr, 0.0001, 1e-15);
}

TEST(Schedule, NeverBelowMinLr) {
  auto o = plateau(0, 0.0);
  o.min_lr = 0.005;
  LrState s = initial_lr_state(o);
  update_lr_after_epoch(o, 1, 0.5, s);
  EXPECT_TRUE(update_lr_after_epoch(o, 2, 0.5, s));
  EXPECT_DOUBLE_EQ(s.lr, 0.005);
  EXPECT_FALSE(update_lr_after_epoch(o, 3, 0.5, s));  // at the floor: no more drops
  EXPECT_EQ(s.drops, 1);
}

TEST(Schedule, StepDropsAfterTheListedEpochs) {
  Config::Optim o;
  o.schedule = "step";
  o.step_epochs = {2, 4};
  LrState s = initial_lr_state(o);
  std::vector<double> lr;
  for (int epoch = 1; epoch <= 5; ++epoch) {
    update_lr_after_epoch(o, epoch, 0.9, s);
    lr.push_back(s.lr);
  }
  EXPECT_DOUBLE_EQ(lr[0], 0.01);
  EXPECT_DOUBLE_EQ(lr[1], 0.001);
  EXPECT_DOUBLE_EQ(lr[2], 0.001);
  EXPECT_NEAR(lr[3], 0.0001, 1e-15);
  EXPECT_NEAR(lr[4], 0.0001, 1e-15);
}

TEST(Schedule, WarmupRisesLinearlyToTheScheduledLr) {
  Config::Optim o;
  EXPECT_EQ(lr_at_step(o, 0.4, 0, 100, 100000), 0.4);  // no warm-up by default
  // 0.05 epochs of 100 steps: 5 steps, from 0.25 * lr; hand-computed.
  o.warmup_epochs = 0.05;
  o.warmup_start = 0.25;
  const double want[] = {0.4 * (0.25 + 0.75 * 1 / 5),
                         0.4 * (0.25 + 0.75 * 2 / 5),
                         0.4 * (0.25 + 0.75 * 3 / 5),
                         0.4 * (0.25 + 0.75 * 4 / 5),
                         0.4,
                         0.4};
  for (int step = 0; step < 6; ++step)
    EXPECT_DOUBLE_EQ(lr_at_step(o, 0.4, step, 100, 100000), want[step]) << step;
  EXPECT_DOUBLE_EQ(lr_at_step(o, 0.4, 0, 100, 100000), 0.16);
  EXPECT_EQ(lr_at_step(o, 0.4, 1000, 100, 100000), 0.4);
  // From zero, over 2 epochs of 3 steps: 1/6, 2/6, ... of the (possibly dropped) lr.
  o.warmup_epochs = 2;
  o.warmup_start = 0;
  EXPECT_DOUBLE_EQ(lr_at_step(o, 0.3, 0, 3, 100000), 0.05);
  EXPECT_DOUBLE_EQ(lr_at_step(o, 0.3, 2, 3, 100000), 0.15);
  EXPECT_DOUBLE_EQ(lr_at_step(o, 0.03, 2, 3, 100000), 0.015);
  EXPECT_EQ(lr_at_step(o, 0.3, 5, 3, 100000), 0.3);
  // Less than one step of warm-up still means one step.
  o.warmup_epochs = 0.001;
  EXPECT_EQ(lr_at_step(o, 0.3, 0, 3, 100000), 0.3);
}

// The poly schedule (You et al. 2017) after a warm-up, by hand: lr 1, 2 warm-up steps, 10 steps
// in all, so K = 8 decay steps; step 2 + k runs at (1 - k/8)^2.
TEST(Schedule, PolyDecaysFromTheWarmupsEndToZeroAtTheEndOfTheEpochs) {
  Config::Optim o;
  o.schedule = "poly";
  o.warmup_epochs = 0.02;  // of 100 steps per epoch: 2 steps
  const double want[] = {0.5, 1, 1, 0.765625, 0.5625, 0.390625, 0.25, 0.140625, 0.0625, 0.015625};
  for (int step = 0; step < 10; ++step)
    EXPECT_DOUBLE_EQ(lr_at_step(o, 1.0, step, 100, 10), want[step]) << step;
  EXPECT_EQ(lr_at_step(o, 1.0, 10, 100, 10), 0.0);  // past the end (never run)
  o.min_lr = 0.05;                                  // a floor, as for the other schedules
  EXPECT_DOUBLE_EQ(lr_at_step(o, 1.0, 9, 100, 10), 0.05);
  // No warm-up, power 1: a straight line over 4 steps.
  o = {};
  o.schedule = "poly";
  o.poly_power = 1;
  for (int step = 0; step < 4; ++step)
    EXPECT_DOUBLE_EQ(lr_at_step(o, 0.4, step, 2, 4), 0.1 * (4 - step)) << step;
  // The step-by-step decay is the whole schedule: no epoch ever drops the lr.
  LrState state = initial_lr_state(o);
  for (int epoch = 1; epoch <= 10; ++epoch)
    EXPECT_FALSE(update_lr_after_epoch(o, epoch, 0.5, state));
  EXPECT_EQ(state.lr, o.lr);
}

// One step of the paper's rule over the whole net, by hand: weights are decayed, biases only
// when asked.
TEST(Sgd, DecaysWeightsAndBiasesOnlyWhenConfigured) {
  Config c;
  c.model.towers = 1;
  c.model.num_classes = 2;
  c.model.input_size = 23;
  c.model.conv1 = {2, 3, 1, 0};
  c.model.conv2 = {2, 3, 1, 1};
  c.model.conv3 = {2, 3, 1, 1};
  c.model.conv4 = {2, 3, 1, 1};
  c.model.conv5 = {2, 3, 1, 1};
  c.model.fc6_units = 2;
  c.model.fc7_units = 2;
  for (bool decay_biases : {false, true}) {
    Net net(c, 1, DType::f64);
    for (auto& p : net.params()) {
      for (int64_t i = 0; i < p.value.numel(); ++i) {
        p.value.data<double>()[i] = 2.0;
        p.grad.data<double>()[i] = 0.5;
        p.momentum.data<double>()[i] = 0.1;
      }
    }
    c.optim.decay_biases = decay_biases;
    sgd_step(net, c.optim, 0.01);
    for (const auto& p : net.params()) {
      const double decay = (p.is_bias && !decay_biases) ? 0.0 : 0.0005;
      // v = 0.9*0.1 - decay*0.01*2 - 0.01*0.5;  w = 2 + v
      const double v = 0.9 * 0.1 - decay * 0.01 * 2.0 - 0.01 * 0.5;
      EXPECT_NEAR(p.momentum.data<double>()[0], v, 1e-15) << p.name;
      EXPECT_NEAR(p.value.data<double>()[0], 2.0 + v, 1e-15) << p.name;
    }
  }
}

}  // namespace
}  // namespace alexnet
