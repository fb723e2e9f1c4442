#include "src/apps/common.h"

#include <cstdio>
#include <exception>

#include <fmt/format.h>

#include "alexnet/dist.h"
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
  // With many ranks (alexnet/dist.h), an error every rank met is said once, by rank 0; an error
  // on one rank alone is said by that rank, naming it, and ends the job: the other ranks would
  // wait for it in their next collective.
  // (The world is read when an error comes: the body is what starts MPI.)
  const std::string name = app.get_name();
  auto fail = [&](const char* kind, const std::string& what, int status) {
    const dist::World& world = dist::world();
    const std::string who =
        world.size > 1 ? fmt::format(" (rank {} of {}, {})", world.rank, world.size, world.host)
                       : "";
    std::fprintf(stderr, "%s%s: %s: %s\n", name.c_str(), who.c_str(), kind, what.c_str());
    if (world.size > 1) dist::abort_world(status);
    dist::finalize_world();  // mpirun -np 1
    return status;
  };
  try {
    return body();
  } catch (const dist::AgreedError& e) {
    if (e.report) std::fprintf(stderr, "%s: error: %s\n", name.c_str(), e.what());
    dist::finalize_world();
    return 2;
  } catch (const Error& e) {
    return fail("error", e.what(), 2);
  } catch (const std::bad_alloc&) {
    return fail("error", "out of memory (lower data.batch_size)", 2);
  } catch (const std::exception& e) {
    return fail("internal error", e.what(), 70);
  }
}

}  // namespace alexnet
