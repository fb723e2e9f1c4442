// Data-parallel training over many processes: the ranks of one MPI job (mpirun, or srun under
// Slurm). Every rank holds a whole replica of the network and trains on its share of each global
// batch; the gradients are summed over the ranks before the update, so every replica takes the
// same step. A process started without a launcher is the one rank of a world of one, and MPI is
// never initialised: nothing here costs it anything.
//
// The collectives run on the calling thread (the trainer's main thread; MPI is initialised for
// that alone). Each waits at most dist.timeout_s (set_timeout) for the other ranks; past that the
// job ends with one line naming this rank, its host and the collective: a rank that died or hangs
// never leaves the others waiting forever.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "alexnet/error.h"

namespace alexnet::dist {

struct World {
  int rank = 0, size = 1;
  int local_rank = 0, local_size = 1;  // among the ranks on this host (it picks the GPUs)
  std::string host;
  bool mpi = false;  // MPI is initialised: a launcher started this process
};

// The launcher that started this process, from its environment ("mpirun", "srun", ...), or ""
// when there is none.
std::string launcher();

// Initialises MPI when a launcher started this process; a world of one otherwise. Once per
// process (later calls return the same world). Throws alexnet::Error when MPI cannot start, or
// when this build has no MPI (ALEXNET_MPI off) and a launcher started it.
const World& init_world();
// The world of init_world(), or a world of one before it.
const World& world();
// MPI_Finalize, when init_world() initialised MPI. At the end of main.
void finalize_world();
// Ends every rank of the job now (MPI_Abort), with `exit_code`: for an error on one rank that
// the others cannot learn of, since they would wait for it in the next collective.
[[noreturn]] void abort_world(int exit_code);

// The longest a collective waits for the other ranks, in seconds (dist.timeout_s).
void set_timeout(double seconds);
// The trainer's stop request (the number of the signal that asked, 0 for none): a rank asked to
// stop while it goes on waiting in a collective says which collective (under mpirun, the sign
// that another rank has died and the launcher is ending the job).
void watch_stop_requests(const std::atomic<int>* flag);

// An error every rank met (agree_on_errors): rank 0 says it, the other ranks exit quietly.
struct AgreedError : Error {
  AgreedError(const std::string& what, bool say_it) : Error(what), report(say_it) {}
  bool report;  // false: another rank prints it
};

// A collective checkpoint of the start-up: `mine` is this rank's error ("" for none). When any
// rank has one, every rank throws AgreedError with the first failing rank's message (prefixed
// with that rank and host unless every rank failed alike), so a bad config or path is one line
// from rank 0 and every rank exits with the same status.
void agree_on_errors(const std::string& mine);
// Runs `step` on this rank, then agree_on_errors with the message of the alexnet::Error it threw
// ("" when none).
void run_agreed(const std::function<void()>& step);

// Collectives over every rank; `what` names the collective in the timeout's line. With one rank
// each returns at once.
// In place, the sum over the ranks in rank order (rank 0's + rank 1's + ...): the order never
// changes, so a run with N ranks is reproducible bit for bit.
void allreduce_sum(float* data, int64_t count, const char* what);
void allreduce_sum(double* data, int64_t count, const char* what);
// Every rank's string, by rank.
std::vector<std::string> allgather(const std::string& mine, const char* what);
// Rank 0's string, on every rank.
std::string broadcast(const std::string& from_rank0, const char* what);
void barrier(const char* what);

}  // namespace alexnet::dist
