// alexnet-train: train AlexNet from a YAML config; resume from a checkpoint.
#include "alexnet/train.h"
#include "src/apps/common.h"

int main(int argc, char** argv) {
  CLI::App app{"Train the AlexNet of Krizhevsky, Sutskever and Hinton (2012).", "alexnet-train"};
  alexnet::CommonOptions common;
  add_common_options(app, common);
  std::string resume;
  app.add_option("--resume", resume,
                 "continue a run: 'auto' (newest checkpoint in the run directory) or a "
                 "checkpoint path");
  return alexnet::run_app(app, argc, argv, [&] {
    alexnet::TrainOptions o;
    o.config_path = common.config_path;
    o.sets = common.sets;
    o.device = common.device;
    o.out = common.out;
    o.resume = resume;
    return alexnet::run_training(o);
  });
}
