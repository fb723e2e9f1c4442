// What every alexnet binary shares: the common options and the one-line error exit.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace alexnet {

struct CommonOptions {
  std::string config_path;
  std::vector<std::string> sets;
  std::string device = "auto";
  std::string out;
};

// --config FILE, --set key=value (repeatable), --device, --out DIR (what --out means differs).
void add_common_options(CLI::App& app, CommonOptions& options, const std::string& out_help);

// Parses the command line and runs `body`, turning a user error (alexnet::Error, bad option)
// into one line on stderr and exit status 2; `body` returns the exit status otherwise.
int run_app(CLI::App& app, int argc, char** argv, const std::function<int()>& body);

}  // namespace alexnet
