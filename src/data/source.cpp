// The data source a config names.
#include "alexnet/data.h"
#include "alexnet/error.h"

namespace alexnet {

std::unique_ptr<DataSource> make_source(const Config& config, Split split,
                                        const std::vector<std::string>* classes) {
  if (config.data.source == "synthetic") return make_synthetic_source(config, split);
  if (config.data.source == "folder") return make_folder_source(config, split, classes);
  throw Error("data.source = '" + config.data.source +
              "' is not available yet (packed shards come with alexnet-prep); use folder or "
              "synthetic");
}

}  // namespace alexnet
