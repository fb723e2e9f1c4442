// The ranks of one job over MPI (alexnet/dist.h). Only the C API of MPI, on the main thread.
#include "alexnet/dist.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#ifdef ALEXNET_HAVE_MPI
#include <mpi.h>
#endif

namespace alexnet::dist {
namespace {

World g_world;
bool g_initialised = false;
[[maybe_unused]] bool g_finalised = false;  // (MPI builds only)
double g_timeout_s = 600;
const std::atomic<int>* g_stop = nullptr;  // the trainer's stop request (a signal number)
std::vector<std::string> g_hosts;          // by rank

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}

std::string this_host() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "?";
  return name;
}

std::string host_of(int rank) {
  return rank >= 0 && static_cast<size_t>(rank) < g_hosts.size()
             ? g_hosts[static_cast<size_t>(rank)]
             : "?";
}

#ifdef ALEXNET_HAVE_MPI
// Every MPI call goes through here (MPI_COMM_WORLD returns its errors instead of aborting).
void mpi_check(int code, const char* call, const char* file, int line) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw Error(fmt::format("MPI: {} failed ({}:{}): {}", call, file, line, text));
}
#define AX_MPI_CHECK(call) mpi_check((call), #call, __FILE__, __LINE__)

[[noreturn]] void timed_out(const char* what, double seconds) {
  std::fprintf(stderr,
               "alexnet: rank %d of %d (host %s): no answer from the other ranks in %s after "
               "%.0f s (dist.timeout_s): a rank died or hangs; ending the job\n",
               g_world.rank, g_world.size, g_world.host.c_str(), what, seconds);
  abort_world(3);
}

// Waits for a non-blocking collective, at most g_timeout_s. Open MPI moves the data only inside
// MPI_Test, so for the first second it polls without pause (yielding the core to the decode
// threads); past that the other ranks are busy elsewhere (rank 0 writing a checkpoint), and it
// sleeps in growing pauses, so a long wait costs no core.
void wait_for(MPI_Request& request, const char* what) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  auto pause = std::chrono::microseconds(0);
  double stop_seen = -1;  // when a stop request was first seen in this wait
  bool said = false;
  for (;;) {
    int done = 0;
    const int code = MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (code != MPI_SUCCESS) {
      char text[MPI_MAX_ERROR_STRING] = {};
      int length = 0;
      MPI_Error_string(code, text, &length);
      throw Error(fmt::format("MPI: {} failed: {} (has another rank ended?)", what, text));
    }
    if (done != 0) return;
    const double waited = std::chrono::duration<double>(Clock::now() - start).count();
    if (waited > g_timeout_s) timed_out(what, waited);
    // A launcher ends a job whose rank died with SIGTERM to the others (then SIGKILL): where
    // this rank was waiting is then the one clue it can leave. Said once, if the wait goes on.
    const int sig = g_stop != nullptr ? g_stop->load() : 0;
    if (sig != 0 && stop_seen < 0) stop_seen = waited;
    if (!said && stop_seen >= 0 && waited - stop_seen > 0.2) {
      std::fprintf(stderr,
                   "alexnet: rank %d of %d (host %s): signal %d while waiting for the other ranks "
                   "in %s\n",
                   g_world.rank, g_world.size, g_world.host.c_str(), sig, what);
      std::fflush(stderr);
      said = true;
    }
    if (waited < 1.0) {
      std::this_thread::yield();
      continue;
    }
    pause = std::min(std::chrono::microseconds(1000), pause + std::chrono::microseconds(20));
    std::this_thread::sleep_for(pause);
  }
}

template <class T>
MPI_Datatype mpi_type();
template <>
MPI_Datatype mpi_type<float>() {
  return MPI_FLOAT;
}
template <>
MPI_Datatype mpi_type<double>() {
  return MPI_DOUBLE;
}

int mpi_count(int64_t count, const char* what) {
  if (count > INT_MAX)
    throw Error(fmt::format("{}: {} elements per rank is beyond MPI's int counts", what, count));
  return static_cast<int>(count);
}

// The sum in rank order: rank j owns chunk j of the array; an all-to-all brings it every rank's
// chunk j, it adds them in rank order, and an all-gather hands the sums round. The same data
// moved as a ring all-reduce moves, and an order MPI's own reductions do not promise.
template <class T>
void ordered_allreduce(T* data, int64_t count, const char* what) {
  const auto n = static_cast<size_t>(g_world.size);
  const auto chunk = static_cast<size_t>((count + g_world.size - 1) / g_world.size);
  const int c = mpi_count(static_cast<int64_t>(chunk), what);
  static std::vector<T> send, recv;  // reused: the gradients come every step
  send.assign(data, data + count);
  send.resize(n * chunk, T(0));
  recv.resize(n * chunk);
  MPI_Request request = MPI_REQUEST_NULL;
  AX_MPI_CHECK(MPI_Ialltoall(send.data(), c, mpi_type<T>(), recv.data(), c, mpi_type<T>(),
                             MPI_COMM_WORLD, &request));
  wait_for(request, what);
  for (size_t i = 0; i < chunk; ++i) {
    T sum = recv[i];
    for (size_t r = 1; r < n; ++r) sum += recv[r * chunk + i];
    send[i] = sum;
  }
  AX_MPI_CHECK(MPI_Iallgather(send.data(), c, mpi_type<T>(), recv.data(), c, mpi_type<T>(),
                              MPI_COMM_WORLD, &request));
  wait_for(request, what);
  std::copy(recv.begin(), recv.begin() + count, data);
}
#endif  // ALEXNET_HAVE_MPI

template <class T>
void sum_over_ranks(T* data, int64_t count, const char* what) {
  if (g_world.size == 1 || count <= 0) return;
#ifdef ALEXNET_HAVE_MPI
  ordered_allreduce(data, count, what);
#else
  (void)data, (void)what;
#endif
}

}  // namespace

std::string launcher() {
  if (env("OMPI_COMM_WORLD_SIZE") != nullptr) return "mpirun (Open MPI)";
  if (env("PMIX_RANK") != nullptr) return "a PMIx launcher (srun --mpi=pmix, prterun)";
  if (env("PMI_RANK") != nullptr || env("PMI_SIZE") != nullptr)
    return "a PMI launcher (srun --mpi=pmi2, mpiexec)";
  return "";
}

const World& init_world() {
  if (g_initialised) return g_world;
  g_initialised = true;
  g_world.host = this_host();
  g_hosts = {g_world.host};
  const std::string who = launcher();
  if (who.empty()) {
    // srun without an MPI plugin starts independent processes that would each train alone.
    const char* tasks = env("SLURM_STEP_NUM_TASKS");
    if (env("SLURM_PROCID") != nullptr && tasks != nullptr && std::atoi(tasks) > 1)
      throw Error(
          fmt::format("srun started {} tasks without an MPI process manager, so each "
                      "would train alone: run srun --mpi=pmix (or pmi2)",
                      tasks));
    return g_world;
  }
#ifndef ALEXNET_HAVE_MPI
  throw Error("started by " + who +
              ", but this build has no MPI (ALEXNET_MPI=OFF): build with Open MPI to train on "
              "many ranks");
#else
  int provided = 0;
  // The decode threads never call MPI: the main thread alone makes every call.
  AX_MPI_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided));
  g_world.mpi = true;
  AX_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  AX_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &g_world.rank));
  AX_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &g_world.size));
  MPI_Comm local = MPI_COMM_NULL;
  AX_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_world.rank,
                                   MPI_INFO_NULL, &local));
  AX_MPI_CHECK(MPI_Comm_rank(local, &g_world.local_rank));
  AX_MPI_CHECK(MPI_Comm_size(local, &g_world.local_size));
  AX_MPI_CHECK(MPI_Comm_free(&local));
  g_hosts = allgather(g_world.host, "the start-up");
  return g_world;
#endif
}

const World& world() {
  return g_world;
}

void finalize_world() {
#ifdef ALEXNET_HAVE_MPI
  if (g_world.mpi && !g_finalised) {
    g_finalised = true;
    MPI_Finalize();
  }
#endif
}

void abort_world(int exit_code) {
  std::fflush(stdout);
  std::fflush(stderr);
#ifdef ALEXNET_HAVE_MPI
  if (g_world.mpi && !g_finalised) MPI_Abort(MPI_COMM_WORLD, exit_code);
#endif
  std::_Exit(exit_code);
}

void set_timeout(double seconds) {
  g_timeout_s = seconds;
}

void watch_stop_requests(const std::atomic<int>* flag) {
  g_stop = flag;
}

void agree_on_errors(const std::string& mine) {
  if (g_world.size == 1) {
    if (!mine.empty()) throw AgreedError(mine, true);
    return;
  }
  const std::vector<std::string> all = allgather(mine, "the start-up check");
  const auto first = std::find_if(all.begin(), all.end(), [](const auto& e) { return !e.empty(); });
  if (first == all.end()) return;
  const bool alike =
      std::all_of(all.begin(), all.end(), [&](const auto& e) { return e == *first; });
  const int rank = static_cast<int>(first - all.begin());
  throw AgreedError(alike ? *first : fmt::format("rank {} ({}): {}", rank, host_of(rank), *first),
                    g_world.rank == 0);
}

void run_agreed(const std::function<void()>& step) {
  std::string error;
  try {
    step();
  } catch (const Error& e) {
    error = e.what();
  }
  agree_on_errors(error);
}

void allreduce_sum(float* data, int64_t count, const char* what) {
  sum_over_ranks(data, count, what);
}

void allreduce_sum(double* data, int64_t count, const char* what) {
  sum_over_ranks(data, count, what);
}

std::vector<std::string> allgather(const std::string& mine, const char* what) {
  if (g_world.size == 1) return {mine};
#ifdef ALEXNET_HAVE_MPI
  const auto n = static_cast<size_t>(g_world.size);
  std::vector<int> lengths(n), offsets(n);
  int length = mpi_count(static_cast<int64_t>(mine.size()), what);
  MPI_Request request = MPI_REQUEST_NULL;
  AX_MPI_CHECK(
      MPI_Iallgather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, MPI_COMM_WORLD, &request));
  wait_for(request, what);
  int64_t total = 0;
  for (size_t r = 0; r < n; ++r) {
    offsets[r] = mpi_count(total, what);
    total += lengths[r];
  }
  std::string all(static_cast<size_t>(total), '\0');
  AX_MPI_CHECK(MPI_Iallgatherv(mine.data(), length, MPI_CHAR, all.data(), lengths.data(),
                               offsets.data(), MPI_CHAR, MPI_COMM_WORLD, &request));
  wait_for(request, what);
  std::vector<std::string> out;
  for (size_t r = 0; r < n; ++r)
    out.push_back(all.substr(static_cast<size_t>(offsets[r]), static_cast<size_t>(lengths[r])));
  return out;
#else
  (void)what;
  return {mine};
#endif
}

std::string broadcast(const std::string& from_rank0, const char* what) {
  if (g_world.size == 1) return from_rank0;
#ifdef ALEXNET_HAVE_MPI
  int64_t length = static_cast<int64_t>(from_rank0.size());
  MPI_Request request = MPI_REQUEST_NULL;
  AX_MPI_CHECK(MPI_Ibcast(&length, 1, MPI_INT64_T, 0, MPI_COMM_WORLD, &request));
  wait_for(request, what);
  std::string s = g_world.rank == 0 ? from_rank0 : std::string(static_cast<size_t>(length), '\0');
  AX_MPI_CHECK(
      MPI_Ibcast(s.data(), mpi_count(length, what), MPI_CHAR, 0, MPI_COMM_WORLD, &request));
  wait_for(request, what);
  return s;
#else
  (void)what;
  return from_rank0;
#endif
}

void barrier(const char* what) {
  if (g_world.size == 1) return;
#ifdef ALEXNET_HAVE_MPI
  MPI_Request request = MPI_REQUEST_NULL;
  AX_MPI_CHECK(MPI_Ibarrier(MPI_COMM_WORLD, &request));
  wait_for(request, what);
#else
  (void)what;
#endif
}

}  // namespace alexnet::dist
