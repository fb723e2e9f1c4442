// alexnet-train: the loop of the paper (momentum SGD over shuffled batches, validation every
// epoch, LR divided on a plateau), with checkpoints that resume bit for bit.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>

#include "alexnet/checkpoint.h"
#include "alexnet/cpu_ops.h"
#include "alexnet/dist.h"
#include "alexnet/error.h"
#include "alexnet/file_io.h"
#include "alexnet/plots.h"
#include "alexnet/sgd.h"
#include "alexnet/trace.h"
#include "alexnet/train.h"
#include "src/comm/exchange.h"
#include "src/comm/gradient_sum.h"
#include "src/train/prefetch.h"
#include "src/train/run_dir.h"

namespace fs = std::filesystem;

namespace alexnet {
namespace {

// The process's resident memory in MB (Linux: /proc/self/statm), or -1 where it cannot be read:
// in every epoch summary, so that growth from epoch to epoch shows.
double resident_megabytes() {
  std::ifstream statm("/proc/self/statm");
  long long total = 0, resident = 0;
  if (!(statm >> total >> resident)) return -1;
  return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)) / 1e6;
}

// ---------------------------------------------------------------------------- signals
// The first SIGINT/SIGTERM asks the loop to stop after the current step and checkpoint;
// a second SIGINT gives up at once (the last checkpoint on disk stays intact: writes are atomic).
std::atomic<int> g_stop_signal{0};

extern "C" void on_stop_signal(int sig) {
  if (g_stop_signal.exchange(sig) != 0 && sig == SIGINT) std::_Exit(128 + sig);
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// ---------------------------------------------------------------------------- output
// Plain periodic lines go to train.log (and to stdout when it is not a terminal); a terminal
// gets one progress line rewritten in place, plus the epoch summaries.
// With many ranks only rank 0 has the console; every rank has its own log.
class Reporter {
 public:
  // Under MPI the launcher may give a rank a terminal of its own whatever its own output is,
  // so ranks print plain lines.
  Reporter(const std::string& log_path, bool console)
      : console_(console), tty_(console && !dist::world().mpi && ::isatty(STDOUT_FILENO) != 0) {
    try {
      auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(log_path);
      log_ = std::make_shared<spdlog::logger>("train", sink);
      log_->set_pattern("%Y-%m-%d %H:%M:%S %v");
      log_->flush_on(spdlog::level::info);
    } catch (const spdlog::spdlog_ex& e) {
      throw Error("cannot write '" + log_path + "': " + e.what());
    }
  }
  ~Reporter() {
    if (progress_shown_) std::fputs("\n", stdout);
  }
  Reporter(const Reporter&) = delete;
  Reporter& operator=(const Reporter&) = delete;

  // A line for the log and the terminal.
  void line(const std::string& text) {
    log_->info(text);
    if (!console_) return;
    if (progress_shown_) std::fputs("\r\033[K", stdout);
    progress_shown_ = false;
    std::fprintf(stdout, "%s\n", text.c_str());
    std::fflush(stdout);
  }
  // A line for the log; on a terminal it is the progress line instead.
  void periodic(const std::string& text) {
    log_->info(text);
    if (console_ && !tty_) {
      std::fprintf(stdout, "%s\n", text.c_str());
      std::fflush(stdout);
    }
  }
  // A line for the log alone.
  void log_only(const std::string& text) { log_->info(text); }
  // Redrawn at most a few times a second: a fast step rate would flood the terminal.
  void progress(const std::string& text) {
    const auto now = std::chrono::steady_clock::now();
    if (!tty_ || now - last_progress_ < std::chrono::milliseconds(200)) return;
    last_progress_ = now;
    std::fprintf(stdout, "\r\033[K%s", text.c_str());
    std::fflush(stdout);
    progress_shown_ = true;
  }

 private:
  bool console_, tty_;
  bool progress_shown_ = false;
  std::chrono::steady_clock::time_point last_progress_{};
  std::shared_ptr<spdlog::logger> log_;
};

std::string duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<int64_t>(seconds);
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, s / 60 % 60);
  return fmt::format("{}m{:02}s", s / 60, s % 60);
}

// The last two columns depend on the machine and its load: the training speed, and the share of
// the step time spent waiting for batches.
constexpr const char* kMetricsHeader =
    "epoch,step,loss,train_top1_err,train_top5_err,val_top1_err,val_top5_err,lr,images_per_s,"
    "data_wait\n";

// On resume, rows written after the checkpoint (by a run killed before its next checkpoint)
// are dropped, so the file never repeats an epoch.
void reset_metrics(const RunDir& dir, int64_t resumed_step) {
  std::string kept = kMetricsHeader;
  std::ifstream in(dir.metrics());
  std::string row;
  if (resumed_step > 0 && std::getline(in, row)) {
    while (std::getline(in, row)) {
      std::istringstream fields(row);
      std::string epoch, step;
      if (std::getline(fields, epoch, ',') && std::getline(fields, step, ',') &&
          std::stoll(step) <= resumed_step)
        kept += row + "\n";
    }
  }
  write_text_atomic(dir.metrics(), kept);
}

void append_metrics(const RunDir& dir, const std::string& row) {
  std::ofstream out(dir.metrics(), std::ios::app);
  out << row;
  if (!out) throw Error("cannot write '" + dir.metrics() + "'");
}

// Per weight tensor: RMS of the weights, of the last update (the momentum v is exactly the
// step w just took) and their ratio, as cuda-convnet logged them: a ratio far from ~1e-3 says
// the learning rate or the initialisation is off for that layer.
std::string weight_update_table(const Net& net) {
  struct Sums {
    std::string name;
    double w = 0, v = 0;
    int64_t count = 0;
  };
  std::vector<Sums> sums;
  for (const auto& p : net.params()) {
    if (p.is_bias) continue;
    if (sums.empty() || sums.back().name != p.name) sums.push_back({p.name});
    const Tensor value = p.value.to(Device{}), momentum = p.momentum.to(Device{});  // host copies
    const float* w = value.data<float>();
    const float* v = momentum.data<float>();
    for (int64_t i = 0; i < p.value.numel(); ++i) {
      sums.back().w += double{w[i]} * w[i];
      sums.back().v += double{v[i]} * v[i];
    }
    sums.back().count += p.value.numel();
  }
  std::string s = "weights: rms |w|, rms |dw| of the last step, ratio";
  for (const auto& t : sums) {
    const double w = std::sqrt(t.w / static_cast<double>(t.count));
    const double v = std::sqrt(t.v / static_cast<double>(t.count));
    s += fmt::format("\n  {:<13} {:.3e} {:.3e} {:.1e}", t.name, w, v, w > 0 ? v / w : 0.0);
  }
  return s;
}

std::string layer_table_text(const Net& net) {
  std::string s =
      fmt::format("{:<6} {:<12} {:>12} {:>12}\n", "layer", "output", "params", "MFLOP/img");
  int64_t params = 0;
  double flops = 0;
  for (const auto& l : net.layer_table()) {
    s += fmt::format("{:<6} {:<12} {:>12} {:>12.1f}\n", l.name, l.output, l.params,
                     l.forward_flops / 1e6);
    params += l.params;
    flops += l.forward_flops;
  }
  s += fmt::format("{:<6} {:<12} {:>12} {:>12.1f}", "total", "", params, flops / 1e6);
  return s;
}

// curves.png and filters.png, redrawn after every epoch (milliseconds). A picture that cannot be
// written is reported, and training goes on: it is not worth a run.
void draw_pictures(const RunDir& dir, const Net& net, const Config& config, Reporter& report) {
  try {
    write_curves_png(dir.metrics(), config.name + " (" + dir.root + ")", dir.curves());
    write_filters_png(net.gather_whole("conv1.weight", false), config.model.conv1.filters,
                      config.model.conv1.kernel, net.towers(), dir.filters());
  } catch (const Error& e) {
    report.line(std::string("pictures not drawn: ") + e.what());
  }
}

// Every rank must train the same run: the same config (after --set) and the same checkpoint.
// Said with the first line that differs, by rank 0, before the run directory is touched.
void check_same_run_on_every_rank(const Config& config, const std::string& resume_from,
                                  const DataSource& train, const DataSource& val) {
  const dist::World& world = dist::world();
  if (world.size == 1) return;
  // The data too: a node with a partial copy of the set would count other steps per epoch.
  std::string classes;
  for (const auto& name : train.class_names()) classes += (classes.empty() ? "" : ",") + name;
  const std::string mine =
      config_to_yaml(config) + "resume: '" + resume_from + "'\n" +
      fmt::format("data: {} training images, {} validation images\n", train.size(), val.size()) +
      "classes: " + classes + "\n";
  const std::vector<std::string> all = dist::allgather(mine, "the start-up check of the configs");
  auto lines = [](const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  };
  const std::vector<std::string> first = lines(all[0]);
  for (size_t r = 1; r < all.size(); ++r) {
    if (all[r] == all[0]) continue;
    const std::vector<std::string> other = lines(all[r]);
    size_t k = 0;
    while (k < first.size() && k < other.size() && first[k] == other[k]) ++k;
    // The key's section: the last line above it that is not indented.
    std::string section;
    for (size_t i = 0; i < k && i < first.size(); ++i)
      if (!first[i].empty() && first[i][0] != ' ') section = first[i];
    auto at = [&](const std::vector<std::string>& v) {
      return k < v.size() ? fmt::format("'{}'", v[k]) : std::string("nothing");
    };
    throw dist::AgreedError(
        fmt::format("rank {}'s run differs from rank 0's{}: {} against {} (every rank must be "
                    "given the same --config, --set, --resume and data)",
                    r, section.empty() ? "" : " under '" + section + "'", at(other), at(first)),
        world.rank == 0);
  }
}

}  // namespace

// ---------------------------------------------------------------------------- the run
int run_training(const TrainOptions& opt) {
  const dist::World& world = dist::world();
  const bool rank0 = world.rank == 0;
  // Everything up to the run directory runs on every rank without a word to the others; then an
  // error met on any rank is said once, by rank 0, and no rank touches the directory.
  Config config;
  Checkpoint ckpt;
  const bool resuming = !opt.resume.empty();
  RunDir dir;
  std::vector<Device> placement;
  std::unique_ptr<DataSource> train_data, val_data;
  std::unique_ptr<Net> net_owner;
  int B = 0, b = 0;  // the global batch, and this rank's share of it
  BatchSlice slice;  // where that share lies in every global batch
  int64_t steps_per_epoch = 0;
  dist::run_agreed([&] {
    // Config and what to resume from.
    if (!opt.config_path.empty()) config = load_config(opt.config_path, opt.sets);
    if (resuming && opt.resume != "auto") {
      ckpt = read_checkpoint(opt.resume, opt.sets);
      if (opt.config_path.empty()) config = ckpt.config;
    } else if (opt.config_path.empty()) {
      config = load_config("", opt.sets);
    }
    dir.root = opt.out.empty() ? "runs/" + config.name : opt.out;
    if (resuming && opt.resume == "auto") {
      const std::string path = newest_checkpoint(dir);
      if (path.empty())
        throw Error("--resume auto: nothing to resume in '" + dir.checkpoints() +
                    "' (no last.safetensors or epoch-NNN.safetensors)");
      ckpt = read_checkpoint(path, opt.sets);
      if (opt.config_path.empty()) config = ckpt.config;
    }
    dist::set_timeout(config.dist.timeout_s);
    // Both towers on one device (--device, else model.devices); refused here, before the run
    // directory is touched, when it is not usable. (With many ranks, agreed below.)
    placement = select_placement(opt.device, config);

    if (!resuming && has_checkpoints(dir))
      throw Error("run directory '" + dir.root +
                  "' already holds checkpoints; continue it with --resume auto, or choose "
                  "another --out");

    // Data and the network, before anything in the run directory is touched.
    // A resumed run keeps its checkpoint's classes, whatever the folders say now.
    const auto* classes_fixed = resuming ? &ckpt.classes : nullptr;
    train_data = make_source(config, Split::train, classes_fixed);
    val_data = make_source(config, Split::val, &train_data->classes());
    check_training_order(config, *train_data);
    B = config.data.batch_size;
    slice = rank_share(B);
    b = B / world.size;
    steps_per_epoch = train_data->size() / B;
    if (steps_per_epoch < 1)
      throw Error("the training set has " + std::to_string(train_data->size()) +
                  " images, fewer than data.batch_size = " + std::to_string(B));
  });
  check_same_run_on_every_rank(config, ckpt.path, *train_data, *val_data);
  // Each rank's GPUs, agreed over the ranks before any of them is used.
  placement = agreed_rank_placement(std::move(placement), opt.device, config);
  prepare_gradient_sum();
  dist::run_agreed([&] {
    configure_devices(placement, config);
    net_owner = std::make_unique<Net>(config, b, DType::f32, placement,
                                      make_exchange(placement, config.cuda.exchange_timeout_s));
  });
  Net& net = *net_owner;
  // With many ranks, backward hands each layer's gradients to the sum over the ranks.
  const std::unique_ptr<GradientSum> gradient_sum = make_gradient_sum(net, config.dist.timeout_s);
  if (gradient_sum)
    net.on_weight_gradients = [&](const std::string& layer) { gradient_sum->layer_ready(layer); };
  dist::run_agreed([&] {
    if (rank0) prepare_run_dir(dir);
  });

  const Device device = placement.front();  // where batches are augmented and the loss computed
  const int workers = config.data.workers;
  TrainState state;
  DataStats stats;
  std::unique_ptr<Prefetcher> prefetcher;
  std::unique_ptr<Reporter> reporter;
  dist::run_agreed([&] {
    if (resuming) {
      load_weights(ckpt, net, true);
      state = ckpt.state;
      stats = ckpt.stats;
    } else {
      net.init(config.seed);
      state.lr = initial_lr_state(config.optim);
      stats = config.data.stats.empty() ? compute_stats(*train_data, 1024, workers)
                                        : load_stats(config.data.stats);
    }
    // Checks that the stats fit the data.
    prefetcher = std::make_unique<Prefetcher>(*train_data, stats, config, b, steps_per_epoch,
                                              device, true, slice);
    // Rank 0 writes the run directory's files and has the console; every rank keeps its own log.
    reporter = std::make_unique<Reporter>(rank0 ? dir.log() : dir.rank_log(world.rank), rank0);
  });
  Prefetcher& batches = *prefetcher;
  Reporter& report = *reporter;
  if (rank0) {
    write_text_atomic(dir.config(), config_to_yaml(config));
    reset_metrics(dir, resuming ? state.step : 0);
  }
  report.line(resuming ? fmt::format("resuming {} at epoch {}, step {}", ckpt.path, state.epoch + 1,
                                     state.step)
                       : "training " + config.name + " into " + dir.root);
  if (world.size > 1)
    report.line(fmt::format(
        "rank {} of {} on {} (local rank {}, pid {}): images {} to {} of every global batch of {}",
        world.rank, world.size, world.host, world.local_rank, ::getpid(), slice.first,
        slice.first + b - 1, B));
  if (std::all_of(placement.begin(), placement.end(), [&](Device d) { return d == device; })) {
    report.line("device: " + device.str());
  } else {
    std::string towers;
    for (size_t t = 0; t < placement.size(); ++t)
      towers.append(t ? ", " : "")
          .append("tower " + std::to_string(t) + " on " + placement[t].str());
    report.line("devices: " + towers);
  }
  if (std::any_of(placement.begin(), placement.end(), [](Device d) { return d.is_cpu(); }))
    report.line("blas: " + cpu::blas_description());
  const auto& d = config.data;
  report.line(fmt::format(
      "data: {}{}, {} training images, {} workers, {} batches ahead, {} order{}", d.source,
      d.source == "synthetic" ? "" : " '" + d.train + "'", train_data->size(), d.workers,
      d.prefetch, d.order,
      d.order == "quasi_random" ? fmt::format(" (chunks of {} images, shuffled {} at a time)",
                                              d.quasi_random.chunk, d.quasi_random.window)
                                : ""));
  report.line(layer_table_text(net));

  const int64_t total_steps =
      config.train.max_steps > 0
          ? std::min<int64_t>(config.train.max_steps, config.train.epochs * steps_per_epoch)
          : config.train.epochs * steps_per_epoch;
  // The poly schedule's length: the epochs asked for, whatever train.max_steps cuts off.
  const int64_t schedule_steps = config.train.epochs * steps_per_epoch;
  const auto& classes = train_data->classes();
  const auto& names = train_data->class_names();
  int64_t last_saved_step = resuming ? state.step : -1;

  g_stop_signal = 0;
  install_signal_handlers();
  dist::watch_stop_requests(&g_stop_signal);
  using Clock = std::chrono::steady_clock;
  const auto run_start = Clock::now();
  const int64_t first_step = state.step;
  double window_loss = 0, window_data_wait = 0, allreduce_seconds = 0, run_seconds = 0;
  // A stop request (SIGINT/SIGTERM) on any rank, agreed over the ranks before every step and
  // after the last, so that every rank stops after the same step. (One rank: the flag itself.)
  auto agreed_stop = [&] {
    const int sig = g_stop_signal.load();
    if (world.size == 1) return sig;
    double asked[] = {sig == SIGINT ? 1.0 : 0.0, sig == SIGTERM ? 1.0 : 0.0};
    dist::allreduce_sum(asked, 2, "the agreement on stop requests");
    return asked[1] > 0 ? SIGTERM : asked[0] > 0 ? SIGINT : 0;
  };
  int64_t window_steps = 0;
  auto window_start = Clock::now();
  auto seconds_since = [](Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
  };

  while (state.epoch < config.train.epochs && state.step < total_steps && agreed_stop() == 0) {
    const auto step_start = Clock::now();
    const TraceRange trace_step("step " + std::to_string(state.step + 1));
    // The wait for the batch (still decoding, or on a GPU still uploading) is the data wait. Its
    // images come augmented: on the CPU by the decode threads, on a GPU by the fused kernel
    // get() queues behind the upload.
    const auto batch = batches.get(state.epoch, state.batch_in_epoch, state.step + 1 < total_steps);
    const double data_wait = seconds_since(step_start);
    for (const auto& bad : batch.bad) report.line("skipped " + bad.path + ": " + bad.reason);
    XentResult r = net.forward(batch.images, batch.labels, b, true, config.seed,
                               static_cast<uint64_t>(state.step), slice);
    net.backward();
    if (gradient_sum) {
      gradient_sum->finish();
      allreduce_seconds += gradient_sum->last_timing().exposed_ms / 1000;
    }
    {
      // The batch's loss, hits and skipped files over every rank.
      double sums[] = {r.loss_sum, static_cast<double>(r.top1), static_cast<double>(r.top5),
                       static_cast<double>(batch.bad.size())};
      dist::allreduce_sum(sums, 4, "the step's loss");
      r.loss_sum = sums[0];
      r.top1 = static_cast<int>(std::llround(sums[1]));
      r.top5 = static_cast<int>(std::llround(sums[2]));
      state.epoch_skipped += std::llround(sums[3]);
    }
    if (!std::isfinite(r.loss_sum))
      throw dist::AgreedError(
          fmt::format("the loss became {:g} at step {}: training diverged (lower optim.lr "
                      "or data.scale, or use model.init.scheme)",
                      r.loss_sum, state.step),
          rank0);
    const double lr =
        lr_at_step(config.optim, state.lr.lr, state.step, steps_per_epoch, schedule_steps);
    sgd_step(net, config.optim, lr);
    ++state.step;
    if (config.dist.check_weights_every > 0 && state.step % config.dist.check_weights_every == 0)
      check_replicas_agree(net, state.step);
    ++state.batch_in_epoch;
    state.epoch_loss_sum += r.loss_sum;
    state.epoch_top1 += r.top1;
    state.epoch_top5 += r.top5;
    state.epoch_images += B;
    state.epoch_seconds += seconds_since(step_start);
    run_seconds += seconds_since(step_start);
    state.epoch_data_wait_seconds += data_wait;
    window_loss += r.loss_sum / B;
    window_data_wait += data_wait;
    ++window_steps;

    // Progress: images/s over the run so far, ETA for the steps left.
    const double elapsed = std::chrono::duration<double>(Clock::now() - run_start).count();
    const double steps_per_s = static_cast<double>(state.step - first_step) / elapsed;
    const std::string where = fmt::format("epoch {}/{} step {}/{}", state.epoch + 1,
                                          config.train.epochs, state.step, total_steps);
    const std::string ranks = world.size > 1
                                  ? fmt::format("  {} ranks, all-reduce {:.0f}%", world.size,
                                                100 * allreduce_seconds / run_seconds)
                                  : "";
    report.progress(fmt::format(
        "{}  loss {:.4f}  {:.1f} img/s  data wait {:.0f}%{}  lr {:g}  ETA {}", where,
        r.loss_sum / B, steps_per_s * B, 100 * state.epoch_data_wait_seconds / state.epoch_seconds,
        ranks, lr, duration(static_cast<double>(total_steps - state.step) / steps_per_s)));
    if (state.step % config.train.log_every == 0) {
      const double window_s = seconds_since(window_start);
      report.periodic(fmt::format(
          "{} loss {:.5f} train_top1_err {:.4f} {:.1f} img/s data_wait {:.3f} lr {:g}", where,
          window_loss / static_cast<double>(window_steps),
          1.0 - static_cast<double>(state.epoch_top1) / static_cast<double>(state.epoch_images),
          static_cast<double>(window_steps * B) / window_s, window_data_wait / window_s, lr));
      window_loss = window_data_wait = 0;
      window_steps = 0;
      window_start = Clock::now();
    }

    if (state.batch_in_epoch < steps_per_epoch) continue;
    // ------------------------------------------------------------------ end of an epoch
    const int epoch = state.epoch + 1;
    const auto val = evaluate(net, *val_data, stats, config, 1);
    for (const auto& bad : val.skipped)
      report.line("skipped (val) " + bad.path + ": " + bad.reason);
    // The LR of the epoch's last step (below the schedule's during a warm-up).
    const double lr_used =
        lr_at_step(config.optim, state.lr.lr, state.step - 1, steps_per_epoch, schedule_steps);
    const bool dropped = update_lr_after_epoch(config.optim, epoch, val.top1_error, state.lr);
    const double n = static_cast<double>(state.epoch_images);
    const double ips = n / state.epoch_seconds;
    const double data_wait_share = state.epoch_data_wait_seconds / state.epoch_seconds;
    if (rank0)
      append_metrics(
          dir, fmt::format("{},{},{:.6f},{:.6f},{:.6f},{:.6f},{:.6f},{:.8g},{:.2f},{:.4f}\n", epoch,
                           state.step, state.epoch_loss_sum / n,
                           1.0 - static_cast<double>(state.epoch_top1) / n,
                           1.0 - static_cast<double>(state.epoch_top5) / n, val.top1_error,
                           val.top5_error, lr_used, ips, data_wait_share));
    const double rss = resident_megabytes();
    report.line(
        fmt::format("epoch {} done: loss {:.4f}  train top-1 err {:.4f}  val top-1 err {:.4f}  "
                    "top-5 err {:.4f}  {:.1f} img/s  data wait {:.1f}%{}{}{}",
                    epoch, state.epoch_loss_sum / n,
                    1.0 - static_cast<double>(state.epoch_top1) / n, val.top1_error, val.top5_error,
                    ips, 100 * data_wait_share, rss >= 0 ? fmt::format("  rss {:.0f} MB", rss) : "",
                    dropped ? fmt::format("  (lr -> {:g})", state.lr.lr) : "",
                    state.epoch_skipped + static_cast<int64_t>(val.skipped.size()) > 0
                        ? fmt::format("  ({} train, {} val images skipped)", state.epoch_skipped,
                                      val.skipped.size())
                        : ""));
    const std::string input_bound =
        input_bound_warning(data_wait_share, config, std::thread::hardware_concurrency());
    if (!input_bound.empty()) report.line(input_bound);
    if (rank0) report.log_only(weight_update_table(net));
    const bool best = val.top1_error < state.best_val_top1;
    if (best) state.best_val_top1 = val.top1_error;
    state.epoch = epoch;
    state.batch_in_epoch = 0;
    state.epoch_loss_sum = 0;
    state.epoch_top1 = state.epoch_top5 = state.epoch_images = state.epoch_skipped = 0;
    state.epoch_seconds = state.epoch_data_wait_seconds = 0;
    last_saved_step = state.step;
    if (rank0) {  // the weights are the same on every rank: rank 0 writes them
      save_checkpoint(dir.last(), net, config, state, stats, classes, names);
      if (best) save_checkpoint(dir.best(), net, config, state, stats, classes, names);
      if (epoch % config.checkpoint.every_epochs == 0) {
        save_checkpoint(dir.epoch_file(epoch), net, config, state, stats, classes, names);
        prune_epoch_checkpoints(dir, config.checkpoint.keep);
      }
      draw_pictures(dir, net, config, report);
    }
    // The other ranks wait for it here, not in the next step's all-reduce: a disk too slow for
    // dist.timeout_s is then named as what they waited for.
    dist::barrier("rank 0's end-of-epoch checkpoints");
  }

  if (state.step != last_saved_step && rank0)
    save_checkpoint(dir.last(), net, config, state, stats, classes, names);
  const int sig = agreed_stop();
  // No rank leaves before rank 0 has saved: a launcher ends the whole job as soon as one rank
  // exits with a status other than 0 (130/143 after a stop).
  dist::barrier("the end of the run (rank 0 saving its checkpoint)");
  if (sig != 0) {
    report.line(
        fmt::format("stopped by {} after step {}; checkpoint {} (continue with --resume auto)",
                    sig == SIGINT ? "SIGINT" : "SIGTERM", state.step, dir.last()));
    return 128 + sig;
  }
  report.line(fmt::format("done: {} steps, checkpoint {}", state.step, dir.last()));
  return 0;
}

}  // namespace alexnet
