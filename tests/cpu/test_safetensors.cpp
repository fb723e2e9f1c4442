// The checkpoint file format: round trips, the exact bytes of the public safetensors format,
// refusal of damaged or foreign files, atomic replacement, and the JSON reader underneath.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "alexnet/error.h"
#include "alexnet/json.h"
#include "alexnet/safetensors.h"
#include "tests/cpu/run_binary.h"

namespace fs = std::filesystem;

namespace alexnet {
namespace {

class SafetensorsTest : public test::TempDirTest {
 protected:
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Files left in the directory by an interrupted write.
  int temp_files() const {
    int n = 0;
    for (const auto& e : fs::directory_iterator(dir_)) {
      if (e.path().filename().string().find(".tmp-") != std::string::npos) ++n;
    }
    return n;
  }
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A file with the given header JSON (not padded) followed by `data_bytes` zero bytes.
std::string handmade(const std::string& header, size_t data_bytes) {
  std::string s(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i, n >>= 8) s[static_cast<size_t>(i)] = static_cast<char>(n & 0xFF);
  return s + header + std::string(data_bytes, '\0');
}

template <class T>
SafetensorsView view(const std::string& name, const std::string& dtype, std::vector<int64_t> shape,
                     const std::vector<T>& values) {
  return {name, dtype, std::move(shape), values.data(), values.size() * sizeof(T)};
}

template <class T>
std::vector<T> values_of(const SafetensorsTensor& t) {
  std::vector<T> v(t.data.size() / sizeof(T));
  std::memcpy(v.data(), t.data.data(), t.data.size());
  return v;
}

// The error message of `f`, or "" when it does not throw alexnet::Error.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_ERROR_HAS(statement, substring)                            \
  do {                                                                    \
    const std::string message_ = error_of([&] { (void)(statement); });    \
    EXPECT_NE(message_.find(substring), std::string::npos)                \
        << "message: '" << message_ << "' lacks '" << (substring) << "'"; \
  } while (0)

TEST_F(SafetensorsTest, RoundTripsDtypesShapesAndMetadata) {
  const std::vector<float> f32 = {1.5f, -2.25f, 3e-8f, 4e30f, 0.0f, -0.0f};
  const std::vector<double> f64 = {3.141592653589793, -1e-300, 2, 7};
  const std::vector<int64_t> scalar = {-1234567890123456789LL};
  const std::vector<int32_t> empty;
  const std::vector<uint8_t> u8 = {0, 1, 127, 128, 255};
  const std::vector<uint16_t> bf16 = {0x3F80, 0xC000, 0x7F80};
  const std::vector<uint16_t> f16 = {0x3C00, 0xBC00};
  const std::vector<int16_t> i16 = {-32768, 32767};
  const std::vector<int8_t> i8 = {-128, 5, 127};
  const std::vector<uint8_t> bools = {1, 0, 1, 1};
  const std::vector<float> nine = {9.0f};
  const std::map<std::string, std::string> metadata = {
      {"format", "alexnet-checkpoint/1"},
      {"config", "model:\n  towers: 2\n  name: \"alex\\net\"\n\tdone: 'yes'\n"},
      {"unicode", "Größe ✓ 😀 日本"},
      {"control", std::string("nul\0bell\x07", 9)},
      {"", "empty key"},
  };
  const std::vector<SafetensorsView> views = {
      view("conv1.weight", "F32", {2, 3}, f32),
      view("f64", "F64", {4}, f64),
      view("step", "I64", {}, scalar),
      view("empty", "I32", {2, 0, 3}, empty),
      view("bytes", "U8", {5}, u8),
      view("half.bf16", "BF16", {3}, bf16),
      view("half.f16", "F16", {1, 2}, f16),
      view("i16", "I16", {2}, i16),
      view("i8", "I8", {3, 1}, i8),
      view("mask", "BOOL", {2, 2}, bools),
      view("naïve \"name\"\n", "F32", {1, 1, 1, 1}, nine),
  };
  const std::string file = path("round.safetensors");
  write_safetensors(file, views, metadata);

  const SafetensorsFile read = read_safetensors(file);
  EXPECT_EQ(read.metadata, metadata);
  ASSERT_EQ(read.tensors.size(), views.size());
  for (const auto& v : views) {
    const SafetensorsTensor* t = read.find(v.name);
    ASSERT_NE(t, nullptr) << v.name;
    EXPECT_EQ(t->dtype, v.dtype) << v.name;
    EXPECT_EQ(t->shape, v.shape) << v.name;
    ASSERT_EQ(t->data.size(), v.nbytes) << v.name;
    if (v.nbytes) {
      EXPECT_EQ(std::memcmp(t->data.data(), v.data, v.nbytes), 0) << v.name;
    }
  }
  EXPECT_EQ(values_of<int64_t>(*read.find("step")), scalar);
  EXPECT_EQ(values_of<float>(*read.find("conv1.weight")), f32);
  EXPECT_EQ(read.find("missing"), nullptr);

  // The data starts 8-byte aligned, as the safetensors package writes it.
  const std::string bytes = read_bytes(file);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[static_cast<size_t>(i)]);
  EXPECT_EQ((8 + n) % 8, 0u);
  EXPECT_EQ(temp_files(), 0);
}

TEST_F(SafetensorsTest, WritesTheExactPublicFormat) {
  const std::vector<float> w = {1.0f, -2.0f};
  const std::string file = path("exact.safetensors");
  write_safetensors(file, {view("w", "F32", {2}, w)}, {{"k", "v"}});

  // serde_json's compact form with the metadata first, padded with one space to 80 bytes so
  // that 8 + 80 is a multiple of 8; then 1.0f and -2.0f little-endian.
  const std::string header =
      R"({"__metadata__":{"k":"v"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} )";
  ASSERT_EQ(header.size(), 80u);
  const std::string expected = std::string("\x50\0\0\0\0\0\0\0", 8) + header +
                               std::string("\x00\x00\x80\x3F\x00\x00\x00\xC0", 8);
  EXPECT_EQ(read_bytes(file), expected);
}

TEST_F(SafetensorsTest, WritesNoMetadataKeyWhenThereIsNone) {
  const std::vector<int32_t> v = {1, 2, 3, 4};
  const std::string file = path("plain.safetensors");
  write_safetensors(file, {view("test", "I32", {2, 2}, v)}, {});
  const std::string header = R"({"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}    )";
  const std::string data("\1\0\0\0\2\0\0\0\3\0\0\0\4\0\0\0", 16);
  EXPECT_EQ(read_bytes(file), std::string("\x40\0\0\0\0\0\0\0", 8) + header + data);
}

TEST_F(SafetensorsTest, ReadsFilesFromOtherWriters) {
  // The example in the safetensors documentation: no padding, and any whitespace, key order
  // and escapes a JSON writer may produce.
  const std::string file = path("other.safetensors");
  write_bytes(file,
              handmade(R"({"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}})", 16));
  SafetensorsFile f = read_safetensors(file);
  ASSERT_NE(f.find("test"), nullptr);
  EXPECT_EQ(f.find("test")->shape, (std::vector<int64_t>{2, 2}));

  write_bytes(file,
              handmade("{ \"b\" : {\"shape\":[1], \"data_offsets\":[4,8], \"dtype\":\"F32\"},\n"
                       "\t\"\\u0061\\ud83d\\ude00\": {\"dtype\":\"F32\",\"shape\":[1],"
                       "\"data_offsets\":[0,4]}, \"__metadata__\":{\"x\":\"\\\"\\/\"}}\r\n",
                       8));
  f = read_safetensors(file);
  EXPECT_NE(f.find("b"), nullptr);
  EXPECT_NE(f.find("a\xF0\x9F\x98\x80"), nullptr);
  EXPECT_EQ(f.metadata.at("x"), "\"/");
}

TEST_F(SafetensorsTest, OverwritesAnExistingFile) {
  const std::string file = path("last.safetensors");
  write_safetensors(file, {view("a", "F32", {1}, std::vector<float>{1})}, {});
  write_safetensors(file, {view("b", "F64", {2}, std::vector<double>{2, 3})}, {{"epoch", "2"}});
  const SafetensorsFile f = read_safetensors(file);
  EXPECT_EQ(f.find("a"), nullptr);
  ASSERT_NE(f.find("b"), nullptr);
  EXPECT_EQ(values_of<double>(*f.find("b")), (std::vector<double>{2, 3}));
  EXPECT_EQ(temp_files(), 0);
}

TEST_F(SafetensorsTest, RefusesInvalidViews) {
  const std::string file = path("bad.safetensors");
  const std::vector<float> four = {1, 2, 3, 4};
  EXPECT_ERROR_HAS(write_safetensors(file, {view("a", "F32", {3}, four)}, {}),
                   "has 16 bytes but shape [3] of F32 needs 12");
  EXPECT_ERROR_HAS(write_safetensors(file, {view("a", "F16", {4}, four)}, {}), "needs 8");
  EXPECT_ERROR_HAS(
      write_safetensors(file, {view("a", "F32", {4}, four), view("a", "F32", {2, 2}, four)}, {}),
      "tensor 'a': the name occurs twice");
  EXPECT_ERROR_HAS(write_safetensors(file, {view("__metadata__", "F32", {4}, four)}, {}),
                   "reserved");
  EXPECT_ERROR_HAS(write_safetensors(file, {view("a", "float32", {4}, four)}, {}),
                   "unknown dtype 'float32'");
  EXPECT_ERROR_HAS(write_safetensors(file, {view("a", "F32", {-1, -4}, four)}, {}),
                   "invalid shape");
  EXPECT_ERROR_HAS(write_safetensors(file, {{"a", "F32", {4}, nullptr, 16}}, {}), "no data");
  EXPECT_ERROR_HAS(write_safetensors(file, {}, {{"k", "\xFF"}}), "not valid UTF-8");
  EXPECT_FALSE(fs::exists(file));
  EXPECT_EQ(temp_files(), 0);
}

TEST_F(SafetensorsTest, RefusesTruncatedFiles) {
  const std::vector<float> data(100, 1.0f);
  const std::string file = path("cut.safetensors");
  write_safetensors(file, {view("w", "F32", {10, 10}, data)}, {{"config", "a: 1"}});
  const std::string whole = read_bytes(file);

  write_bytes(file, whole.substr(0, whole.size() - 3));
  EXPECT_ERROR_HAS(read_safetensors(file), "checkpoint '" + file +
                                               "': file is truncated: header promises 400 bytes "
                                               "of data, file has 397");

  write_bytes(file, whole.substr(0, 40));
  EXPECT_ERROR_HAS(read_safetensors(file), "is larger than the rest of the file (32 bytes)");
  EXPECT_ERROR_HAS(read_safetensors(file), "truncated or not a safetensors file");

  write_bytes(file, whole.substr(0, 3));
  EXPECT_ERROR_HAS(read_safetensors(file), "file is only 3 bytes");

  write_bytes(file, "");
  EXPECT_ERROR_HAS(read_safetensors(file), "file is only 0 bytes");
}

TEST_F(SafetensorsTest, RefusesForeignFiles) {
  const std::string file = path("foreign");
  // The start of a PyTorch .pt file (a zip archive).
  write_bytes(file, std::string("PK\x03\x04\x00\x00\x08\x08\x00\x00\x00\x00\x00\x00", 14) +
                        std::string(1000, 'x'));
  EXPECT_ERROR_HAS(read_safetensors(file), "zip archive");

  write_bytes(file, "model:\n  towers: 2\n  activation: relu\n");
  EXPECT_ERROR_HAS(read_safetensors(file), "truncated or not a safetensors file");

  // A plausible length but no JSON behind it.
  write_bytes(file, handmade("not a header", 0));
  EXPECT_ERROR_HAS(read_safetensors(file), "header does not start with '{'");

  write_bytes(file, handmade("{\"a\": [1, 2,, 3]}", 0));
  EXPECT_ERROR_HAS(read_safetensors(file),
                   "header is not valid JSON, at byte 12 (line 1, column 13): syntax error while "
                   "parsing value - unexpected ','");
  write_bytes(file, handmade("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0,\n"
                             "  4.0]}}",
                             4));
  EXPECT_ERROR_HAS(read_safetensors(file), "(line 2, column 3): only integers");
  write_bytes(file, handmade("{\"a\": true}", 0));
  EXPECT_ERROR_HAS(read_safetensors(file), "true, false and null are not supported");
  write_bytes(file, handmade("{\"a\": 5}", 0));
  EXPECT_ERROR_HAS(read_safetensors(file), "tensor 'a': expected an object");
  write_bytes(file, handmade("{\"__metadata__\": {\"k\": 1}}", 0));
  EXPECT_ERROR_HAS(read_safetensors(file), "__metadata__ value for 'k' must be a string");
  write_bytes(file, handmade("{\"__metadata__\": [\"k\"]}", 0));
  EXPECT_ERROR_HAS(read_safetensors(file), "__metadata__ must be an object");
  write_bytes(file, handmade("{\"k\": \"\xC0\x80\"}", 0));
  EXPECT_ERROR_HAS(read_safetensors(file),
                   "at byte 7 (line 1, column 8): syntax error while parsing "
                   "value - invalid string: ill-formed UTF-8 byte");

  EXPECT_ERROR_HAS(
      read_safetensors(path("missing.safetensors")),
      "checkpoint '" + path("missing.safetensors") + "': cannot open: No such file or directory");
  EXPECT_ERROR_HAS(read_safetensors(dir_.string()), "is a directory");
}

TEST_F(SafetensorsTest, RefusesBadTensorEntries) {
  const std::string file = path("entries.safetensors");
  const auto refused = [&](const std::string& header, size_t data, const std::string& message) {
    write_bytes(file, handmade(header, data));
    EXPECT_ERROR_HAS(read_safetensors(file), message);
  };
  refused(R"({"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}})", 4,
          "tensor 'a': unknown dtype \"F33\"");
  refused(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8,
          "data_offsets [0, 8] span 8 bytes but shape [3] of F32 needs 12");
  refused(R"({"a":{"dtype":"F32","shape":[],"data_offsets":[0,8]}})", 8, "needs 4");
  refused(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4,
          "each shape dimension must be a non-negative integer");
  refused(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", 4, "end before they begin");
  refused(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4,
          "data_offsets must be an array [begin, end]");
  refused(R"({"a":{"dtype":"F32","shape":[1]}})", 4, "missing key \"data_offsets\"");
  refused(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}})", 4,
          "unexpected key \"x\"");
  refused(R"({"a":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", 4,
          "overflows");
  refused(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{}})", 1, "duplicate key");
  refused(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4000,
          "the tensors cover 4 bytes of data but the file has 4000");
  refused(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,99999999999]}})", 4, "needs 4");
  refused(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[999999999992,1000000000000]}})", 8,
          "file is truncated: header promises 1000000000000 bytes of data, file has 8");
}

TEST_F(SafetensorsTest, RefusesHolesAndOverlaps) {
  const std::string file = path("tiles.safetensors");
  write_bytes(file, handmade(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                             R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                             12));
  EXPECT_ERROR_HAS(read_safetensors(file),
                   "hole in the data: bytes [4, 8) belong to no tensor (before tensor 'b')");

  write_bytes(file, handmade(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8));
  EXPECT_ERROR_HAS(read_safetensors(file), "bytes [0, 4) belong to no tensor");

  write_bytes(file, handmade(R"({"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},)"
                             R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                             12));
  EXPECT_ERROR_HAS(read_safetensors(file),
                   "tensor 'b' (bytes [4, 12)) overlaps tensor 'a' (bytes [0, 8))");

  write_bytes(file, handmade(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                             R"("b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                             4));
  EXPECT_ERROR_HAS(read_safetensors(file), "overlaps");

  // Empty tensors take no bytes and may sit anywhere on the tiling.
  write_bytes(file, handmade(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                             R"("e":{"dtype":"F32","shape":[0,5],"data_offsets":[4,4]},)"
                             R"("z":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})",
                             4));
  const SafetensorsFile f = read_safetensors(file);
  EXPECT_EQ(f.tensors.size(), 3u);
  EXPECT_TRUE(f.find("e")->data.empty());
}

TEST_F(SafetensorsTest, CorruptedBytesGiveAnErrorNotACrash) {
  const std::vector<float> a = {1, 2, 3};
  const std::vector<int64_t> b = {4};
  const std::string file = path("flip.safetensors");
  write_safetensors(file, {view("a", "F32", {3}, a), view("b", "I64", {}, b)},
                    {{"config", "x: \"1\"\n"}});
  const std::string good = read_bytes(file);
  std::mt19937 gen(7);
  int refused = 0;
  for (int trial = 0; trial < 600; ++trial) {
    std::string bad = good;
    const int flips = 1 + trial % 3;
    for (int k = 0; k < flips; ++k) {
      // Mostly in the length and the header, where the parsing happens.
      const size_t at = gen() % (bad.size() - 24);
      bad[at] = static_cast<char>(gen() & 0xFF);
    }
    if (trial % 5 == 0) bad.resize(gen() % bad.size());
    write_bytes(file, bad);
    try {
      read_safetensors(file);
    } catch (const Error& e) {
      ++refused;
      EXPECT_EQ(std::string(e.what()).rfind("checkpoint '" + file + "': ", 0), 0u) << e.what();
    }
  }
  EXPECT_GT(refused, 400);
}

TEST_F(SafetensorsTest, FailedWriteLeavesNoTraceAndNamesThePath) {
  const std::vector<float> w = {1, 2};
  const std::string nowhere = path("no-such-dir/last.safetensors");
  EXPECT_ERROR_HAS(write_safetensors(nowhere, {view("w", "F32", {2}, w)}, {}),
                   "checkpoint '" + nowhere + "': cannot create");
  EXPECT_ERROR_HAS(write_safetensors(nowhere, {view("w", "F32", {2}, w)}, {}),
                   "No such file or directory");
  EXPECT_FALSE(fs::exists(path("no-such-dir")));

  // A directory in the way: the temp file is written in full and the rename fails.
  const std::string blocked = path("blocked.safetensors");
  fs::create_directories(blocked + "/inside");
  EXPECT_ERROR_HAS(write_safetensors(blocked, {view("w", "F32", {2}, w)}, {}),
                   "checkpoint '" + blocked + "': cannot rename");
  EXPECT_TRUE(fs::is_directory(blocked + "/inside"));
  EXPECT_EQ(temp_files(), 0);
}

TEST_F(SafetensorsTest, FailingMidWriteKeepsTheOldFile) {
  const std::string file = path("last.safetensors");
  const std::vector<float> old_values = {7, 8, 9};
  write_safetensors(file, {view("old", "F32", {3}, old_values)}, {{"epoch", "1"}});
  const std::string old_bytes = read_bytes(file);

  // A file size limit makes write() fail with EFBIG part way through the tensor data; it
  // works for root too, unlike a read-only directory.
  const std::vector<float> big(1 << 16, 1.0f);
  struct sigaction ignore {};
  struct sigaction saved {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGXFSZ, &ignore, &saved), 0);
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &limit), 0);
  const rlimit saved_limit = limit;
  limit.rlim_cur = 4096;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
  const std::string message =
      error_of([&] { write_safetensors(file, {view("new", "F32", {1 << 16}, big)}, {}); });
  setrlimit(RLIMIT_FSIZE, &saved_limit);
  sigaction(SIGXFSZ, &saved, nullptr);

  EXPECT_NE(message.find("checkpoint '" + file + "': cannot write: File too large"),
            std::string::npos)
      << message;
  EXPECT_EQ(read_bytes(file), old_bytes);
  EXPECT_EQ(temp_files(), 0);
}

TEST_F(SafetensorsTest, ReadOnlyDirectoryKeepsTheOldFile) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  const std::string file = path("last.safetensors");
  const std::vector<float> w = {1};
  write_safetensors(file, {view("w", "F32", {1}, w)}, {});
  const std::string old_bytes = read_bytes(file);
  fs::permissions(dir_, fs::perms::owner_read | fs::perms::owner_exec);
  EXPECT_ERROR_HAS(write_safetensors(file, {view("v", "F32", {1}, w)}, {}), "Permission denied");
  fs::permissions(dir_, fs::perms::owner_all);
  EXPECT_EQ(read_bytes(file), old_bytes);
  EXPECT_EQ(temp_files(), 0);
}

// Not a test of this code: writes sample files for tools/checkpoint_to_torch.py when
// ALEXNET_SAFETENSORS_SAMPLE_DIR names a directory.
TEST(SafetensorsSample, WritesSamplesForThePythonTool) {
  const char* out = std::getenv("ALEXNET_SAFETENSORS_SAMPLE_DIR");
  if (!out) GTEST_SKIP() << "ALEXNET_SAFETENSORS_SAMPLE_DIR not set";
  // A narrow AlexNet with two towers: conv2, conv4 and conv5 see half of their input maps.
  const std::vector<std::pair<std::string, std::vector<int64_t>>> params = {
      {"conv1.weight", {8, 3, 11, 11}}, {"conv1.bias", {8}},
      {"conv2.weight", {16, 4, 5, 5}},  {"conv2.bias", {16}},
      {"conv3.weight", {24, 16, 3, 3}}, {"conv3.bias", {24}},
      {"conv4.weight", {24, 12, 3, 3}}, {"conv4.bias", {24}},
      {"conv5.weight", {16, 12, 3, 3}}, {"conv5.bias", {16}},
      {"fc6.weight", {32, 16 * 36}},    {"fc6.bias", {32}},
      {"fc7.weight", {32, 32}},         {"fc7.bias", {32}},
      {"fc8.weight", {10, 32}},         {"fc8.bias", {10}}};
  std::vector<std::vector<float>> storage;
  std::vector<SafetensorsView> views;
  const auto add = [&](const std::string& name, const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (const int64_t d : shape) n *= d;
    storage.emplace_back(static_cast<size_t>(n));
    for (size_t i = 0; i < storage.back().size(); ++i) {
      storage.back()[i] = static_cast<float>(i % 7) * 0.25f;
    }
    views.push_back(view(name, "F32", shape, storage.back()));
  };
  storage.reserve(40);
  for (const auto& [name, shape] : params) add(name, shape);
  for (const auto& [name, shape] : params) add("momentum." + name, shape);
  add("data.mean", {3, 8, 8});
  add("data.pca_eigval", {3});
  add("data.pca_eigvec", {3, 3});
  const std::map<std::string, std::string> metadata = {
      {"format", "alexnet-checkpoint/1"},
      {"config", "model:\n  towers: 2\n  conv1:\n    filters: 8\n"},
      {"epoch", "3"},
      {"step", "120"},
      {"classes", "n01440764\nn01443537\n"}};
  write_safetensors(std::string(out) + "/alexnet.safetensors", views, metadata);

  // The same net with conv4 fed the wrong number of maps and one momentum missing.
  views[6].shape = {24, 8, 3, 3};
  views[6].nbytes = 24 * 8 * 9 * sizeof(float);
  views.erase(views.begin() + 31);
  write_safetensors(std::string(out) + "/alexnet-bad.safetensors", views, metadata);

  const std::vector<double> f64 = {1.5, -2};
  const std::vector<float> f32 = {0.5f, 1, 2};
  const std::vector<int64_t> i64 = {-5, 1LL << 40};
  const std::vector<int32_t> i32 = {-7};
  const std::vector<uint8_t> u8 = {0, 200, 255, 1};
  const std::vector<uint16_t> bf16 = {0x3F80, 0xC040, 0x3E80};  // 1, -3, 0.25
  write_safetensors(
      std::string(out) + "/dtypes.safetensors",
      {view("f64", "F64", {2}, f64), view("f32", "F32", {3}, f32), view("i64", "I64", {2, 1}, i64),
       view("i32", "I32", {}, i32), view("u8", "U8", {2, 2}, u8), view("bf16", "BF16", {3}, bf16)},
      {{"note", "line 1\nline \"2\" ✓"}});
}

TEST(Json, ParsesObjectsArraysStringsAndIntegers) {
  const JsonValue v = parse_json(
      " {\"a\": [1, -2, 0, 9223372036854775807, -9223372036854775808], \"b\": {},"
      " \"c\": [], \"d\": \"x\\ty\"}\n");
  ASSERT_EQ(v.kind, JsonValue::Kind::kObject);
  ASSERT_EQ(v.object.size(), 4u);
  EXPECT_EQ(v.object[0].first, "a");
  const auto& a = v.object[0].second.array;
  ASSERT_EQ(a.size(), 5u);
  EXPECT_EQ(a[1].integer, -2);
  EXPECT_EQ(a[3].integer, INT64_MAX);
  EXPECT_EQ(a[4].integer, INT64_MIN);
  EXPECT_EQ(v.object[3].second.string, "x\ty");
}

TEST(Json, DecodesEscapesToUtf8) {
  EXPECT_EQ(parse_json(R"("\"\\\/\b\f\n\r\t")").string, "\"\\/\b\f\n\r\t");
  EXPECT_EQ(parse_json(R"("\u0041\u00e9\u20AC\ud83d\ude00\u0000")").string,
            std::string("A\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\0", 11));
  EXPECT_EQ(parse_json("\"Grüße 😀\"").string, "Grüße 😀");
}

// Our own refusals (what the safetensors header may not hold) keep their words and say where;
// syntax errors are nlohmann's, with the same "at byte" prefix.
TEST(Json, RefusesWhatItDoesNotSupport) {
  const auto refused = [](const std::string& text, const std::string& message) {
    EXPECT_ERROR_HAS(parse_json(text), message);
  };
  refused("null", "at byte 0 (line 1, column 1): true, false and null are not supported");
  refused("[1, true]", "at byte 4 (line 1, column 5): true, false and null are not supported");
  refused("[1.5]", "at byte 1 (line 1, column 2): only integers are supported, found 1.5");
  refused("[1e3]", "only integers");
  refused("[9223372036854775808]", "at byte 1 (line 1, column 2): integer out of the 64-bit range");
  refused("[-9223372036854775809]", "out of the 64-bit range");
  refused("[18446744073709551616]", "out of the 64-bit range");
  refused("{\"a\":1,\"a\":2}", "at byte 7 (line 1, column 8): duplicate key \"a\"");
  refused("{\"a\\\"b\":1,\"a\\\"b\":2}", "at byte 10 (line 1, column 11): duplicate key \"a\"b\"");
  refused("{\"a\":{\"b\":1,\n \"b\":2}}", "at byte 14 (line 2, column 2): duplicate key \"b\"");
  refused(std::string(100, '[') + std::string(100, ']'),
          "at byte 64 (line 1, column 65): nesting deeper than 64 levels");
  // Syntax: nlohmann's words.
  refused("", "at byte 0 (line 1, column 1): syntax error while parsing value - unexpected end");
  refused("[01]", "at byte 2 (line 1, column 3): syntax error while parsing array");
  refused("[-]", "expected digit after '-'");
  refused("{\"a\":1,}", "at byte 7 (line 1, column 8): syntax error while parsing object key");
  refused("[1,]",
          "at byte 3 (line 1, column 4): syntax error while parsing value - unexpected ']'");
  refused("{\"a\" 1}", "syntax error while parsing object separator");
  refused("[1 2]", "at byte 3 (line 1, column 4): syntax error while parsing array");
  refused("{} {}",
          "at byte 3 (line 1, column 4): syntax error while parsing value - unexpected "
          "'{'; expected end of input");
  refused("\"abc", "missing closing quote");
  refused("\"a\nb\"", "control character U+000A (LF) must be escaped");
  refused(R"("\x")",
          "at byte 2 (line 1, column 3): syntax error while parsing value - invalid "
          "string: forbidden character after backslash");
  refused("\"\\\xE9\"", "forbidden character after backslash");
  refused(R"("\u12G4")", "'\\u' must be followed by 4 hex digits");
  refused(R"("\ud83d")", "surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF");
  refused(R"("\ud83d\u0041")", "surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF");
  refused(R"("\ude00")", "surrogate U+DC00..U+DFFF must follow U+D800..U+DBFF");
  refused("\"\xFF\"", "ill-formed UTF-8");
  refused("\"\xED\xA0\x80\"", "ill-formed UTF-8");  // an encoded surrogate
  refused("\"\xE2\x82\"", "ill-formed UTF-8");
  refused("'a'",
          "at byte 0 (line 1, column 1): syntax error while parsing value - invalid literal");
}

TEST(Json, QuotesLikeSerdeJson) {
  EXPECT_EQ(json_quote("plain"), "\"plain\"");
  EXPECT_EQ(json_quote("a\"b\\c/d"), R"("a\"b\\c/d")");
  EXPECT_EQ(json_quote("l1\nl2\r\t\b\f"), R"("l1\nl2\r\t\b\f")");
  EXPECT_EQ(json_quote(std::string("\x01\x1f\0", 3)), R"("\u0001\u001f\u0000")");
  EXPECT_EQ(json_quote("é😀"), "\"é😀\"");
  const char kNasty[] = "\"\\\n\x01 ü 😀 \0 end";
  const std::string nasty(kNasty, sizeof kNasty - 1);
  EXPECT_EQ(parse_json(json_quote(nasty)).string, nasty);
  EXPECT_TRUE(is_valid_utf8("ü😀"));
  EXPECT_FALSE(is_valid_utf8("\xC3"));
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // past U+10FFFF
}

}  // namespace
}  // namespace alexnet
