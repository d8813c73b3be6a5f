#include "core/sys/sys.h"

#include <gtest/gtest.h>

#include <fstream>

namespace core::sys {
namespace {

class FakeRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::path(::testing::TempDir()) /
            (std::string("sys_test_") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(root_ / "etc");
    std::filesystem::create_directories(root_ / "proc/sys/kernel");
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  void write(const std::string& relative, const std::string& text) { std::ofstream(root_ / relative) << text; }
  std::filesystem::path root_;
};

TEST_F(FakeRoot, ReadsOsRelease) {
  write("etc/os-release",
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n");
  write("proc/sys/kernel/osrelease", "6.1.0-18-amd64\n");
  auto os = read_os(root_);
  ASSERT_TRUE(os.ok()) << os.error().message;
  EXPECT_EQ(os->pretty_name, "Debian GNU/Linux 12 (bookworm)");
  EXPECT_EQ(os->id, "debian");
  EXPECT_EQ(os->version_id, "12");
  EXPECT_EQ(os->kernel, "6.1.0-18-amd64");
}

TEST_F(FakeRoot, ReadsCpuTopologyAndFlags) {
  // Two hyper-threads on one core of one package, as a 1-core/2-thread laptop reports them.
  const std::string processor =
      "model name\t: Intel(R) Core(TM) i7-1185G7 @ 3.00GHz\nphysical id\t: 0\ncore id\t\t: 0\n"
      "flags\t\t: fpu sse sse2 avx avx2 fma avx512f avx512bw\n\n";
  write("proc/cpuinfo", "processor\t: 0\n" + processor + "processor\t: 1\n" + processor);
  auto cpu = read_cpu(root_);
  ASSERT_TRUE(cpu.ok());
  EXPECT_EQ(cpu->model, "Intel(R) Core(TM) i7-1185G7 @ 3.00GHz");
  EXPECT_EQ(cpu->logical_cores, 2);
  EXPECT_EQ(cpu->physical_cores, 1);
  EXPECT_TRUE(cpu->avx2);
  EXPECT_TRUE(cpu->fma);
  EXPECT_TRUE(cpu->avx512f);
}

TEST_F(FakeRoot, CpuWithoutTopologyCountsLogicalCoresAsPhysical) {
  write("proc/cpuinfo", "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t: sse2 avx\n\nprocessor\t: 1\n");
  auto cpu = read_cpu(root_);
  ASSERT_TRUE(cpu.ok());
  EXPECT_EQ(cpu->physical_cores, 2);
  EXPECT_FALSE(cpu->avx2);
}

TEST_F(FakeRoot, ReadsMemory) {
  write("proc/meminfo", "MemTotal:       24576000 kB\nMemFree:  100 kB\nMemAvailable:   20000000 kB\n");
  auto memory = read_memory(root_);
  ASSERT_TRUE(memory.ok());
  EXPECT_EQ(memory->total_bytes, 24576000ull * 1024);
  EXPECT_EQ(memory->available_bytes, 20000000ull * 1024);
}

TEST_F(FakeRoot, MissingFilesAreNotFound) {
  EXPECT_EQ(read_os(root_ / "nowhere").error().code, ErrorCode::kNotFound);
  write("proc/meminfo", "garbage\n");
  EXPECT_EQ(read_memory(root_).error().code, ErrorCode::kCorrupt);
}

TEST(System, ThisMachineIsReadable) {
  auto cpu = read_cpu();
  ASSERT_TRUE(cpu.ok());
  EXPECT_GT(cpu->logical_cores, 0);
  EXPECT_GT(cpu->usable_cores, 0);
  auto memory = read_memory();
  ASSERT_TRUE(memory.ok());
  EXPECT_GT(memory->total_bytes, 0u);
  auto disk = read_disk(".");
  ASSERT_TRUE(disk.ok());
  EXPECT_GT(disk->total_bytes, disk->free_bytes / 2);
  EXPECT_FALSE(read_disk("/does/not/exist").ok());
}

TEST(Nvml, MissingLibraryMeansNoGpuNotAnError) {
  const GpuReport report = detect_gpus("libnvidia-ml-does-not-exist.so.1");
  EXPECT_FALSE(report.driver_loaded);
  EXPECT_TRUE(report.gpus.empty());
  EXPECT_NE(report.reason.find("no NVIDIA driver"), std::string::npos) << report.reason;
}

TEST(Nvml, LibraryWithoutNvmlSymbolsIsRejected) {
  auto nvml = Nvml::open("libm.so.6");
  ASSERT_FALSE(nvml.ok());
  EXPECT_NE(nvml.error().message.find("lacks required NVML functions"), std::string::npos);
}

TEST(Nvml, DecodesWhatTheDriverReports) {
  auto nvml = Nvml::open(WB_FAKE_NVML);
  ASSERT_TRUE(nvml.ok()) << nvml.error().message;
  EXPECT_EQ((*nvml)->driver_version(), "555.42.06");
  EXPECT_EQ((*nvml)->cuda_driver_version(), "12.5");
  auto gpus = (*nvml)->gpus();
  ASSERT_TRUE(gpus.ok());
  ASSERT_EQ(gpus->size(), 2u);
  EXPECT_EQ((*gpus)[0].name, "NVIDIA GeForce RTX 4060");
  EXPECT_EQ((*gpus)[0].memory_total_bytes, 8ull << 30);
  EXPECT_EQ((*gpus)[0].memory_free_bytes, 7ull << 30);
  EXPECT_EQ((*gpus)[1].compute_capability_major, 9);
  EXPECT_EQ((*gpus)[1].utilization_percent, -1);  // not provided by this driver: unreported, not zero
  auto processes = (*nvml)->processes(0);
  ASSERT_TRUE(processes.ok()) << processes.error().message;
  ASSERT_EQ(processes->size(), 1u);
  EXPECT_EQ((*processes)[0].pid, 4242u);
  EXPECT_EQ((*processes)[0].used_memory_bytes, 512ull << 20);
  EXPECT_FALSE((*nvml)->processes(5).ok());
}

}  // namespace
}  // namespace core::sys
