#include "src/apps/common.h"

#include <cstdio>
#include <exception>

#include "alexnet/error.h"

namespace alexnet {

void add_common_options(CLI::App& app, CommonOptions& o, const std::string& out_help) {
  app.add_option("--config", o.config_path, "YAML config file");
  app.add_option("--set", o.sets, "override a config key: --set section.key=value (repeatable)")
      ->take_all()
      ->allow_extra_args(false);
  app.add_option("--device", o.device,
                 "cpu, cuda, cuda:N, or auto (the first GPU when one is usable, else the CPU)")
      ->capture_default_str();
  app.add_option("--out", o.out, out_help);
}

int run_app(CLI::App& app, int argc, char** argv, const std::function<int()>& body) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: error: %s (see --help)\n", app.get_name().c_str(), e.what());
    return 2;
  }
  try {
    return body();
  } catch (const Error& e) {
    std::fprintf(stderr, "%s: error: %s\n", app.get_name().c_str(), e.what());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "%s: error: out of memory (lower data.batch_size)\n",
                 app.get_name().c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: internal error: %s\n", app.get_name().c_str(), e.what());
    return 70;
  }
}

}  // namespace alexnet
