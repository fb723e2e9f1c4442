// alexnet-train: train AlexNet from a YAML config; resume from a checkpoint.
#include <cstdio>

#include "alexnet/config.h"
#include "alexnet/dist.h"
#include "alexnet/train.h"
#include "src/apps/common.h"

int main(int argc, char** argv) {
  CLI::App app{"Train the AlexNet of Krizhevsky, Sutskever and Hinton (2012).", "alexnet-train"};
  alexnet::CommonOptions common;
  add_common_options(app, common, "run directory (default runs/<config name>)");
  std::string resume;
  app.add_option("--resume", resume,
                 "continue a run: 'auto' (newest checkpoint in the run directory) or a "
                 "checkpoint path");
  bool reference = false;
  app.add_flag("--config-reference", reference, "print every config key as a markdown table");
  return alexnet::run_app(app, argc, argv, [&] {
    if (reference) {
      std::fputs(alexnet::config_reference_markdown().c_str(), stdout);
      return 0;
    }
    alexnet::TrainOptions o;
    o.config_path = common.config_path;
    o.sets = common.sets;
    o.device = common.device;
    o.out = common.out;
    o.resume = resume;
    alexnet::dist::init_world();  // MPI, when mpirun or srun started this process
    const int status = alexnet::run_training(o);
    alexnet::dist::finalize_world();
    return status;
  });
}
