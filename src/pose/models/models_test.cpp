#include "pose/models/models.h"

#include <gtest/gtest.h>

#include <fstream>

namespace pose::models {
namespace {

class ModelDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           (std::string("models_test_") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    for (const char* file : {"movenet-lightning.json", "movenet-lightning.bin"}) {
      std::filesystem::copy_file(default_model_dir() / file, dir_ / file);
    }
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST(Models, CatalogHasTheSevenGraphs) {
  EXPECT_EQ(catalog().size(), 7u);
  ASSERT_NE(find_model("movenet-thunder"), nullptr);
  EXPECT_EQ(find_model("movenet-thunder")->input_size, 256);
  EXPECT_EQ(find_model("posenet"), nullptr);
}

// The installed models (scripts/setup) must match the pinned digests.
TEST(Models, InstalledModelsMatchTheirPinnedDigests) {
  for (const auto& check : verify_models(default_model_dir())) {
    EXPECT_TRUE(check.ok) << check.model << ": " << check.problem;
    EXPECT_EQ(check.files.size(), 2u) << check.model;
  }
}

TEST_F(ModelDir, MissingFileNamesThePathAndTheFix) {
  std::filesystem::remove(dir_ / "movenet-lightning.bin");
  const auto check = verify_model(dir_, "movenet-lightning");
  EXPECT_FALSE(check.ok);
  EXPECT_EQ(check.files[1].state, FileState::kMissing);
  EXPECT_NE(check.problem.find("movenet-lightning.bin is missing: run `make setup`"), std::string::npos);
}

TEST_F(ModelDir, CorruptedByteIsCaught) {
  {
    std::fstream file(dir_ / "movenet-lightning.bin", std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(1000);
    file.put('\x5a');
  }
  const auto check = verify_model(dir_, "movenet-lightning");
  EXPECT_FALSE(check.ok);
  EXPECT_EQ(check.files[1].state, FileState::kChecksumMismatch);
  EXPECT_NE(check.problem.find("corrupt"), std::string::npos);
}

TEST_F(ModelDir, TruncatedFileIsCaught) {
  std::filesystem::resize_file(dir_ / "movenet-lightning.json", 100);
  const auto check = verify_model(dir_, "movenet-lightning");
  EXPECT_FALSE(check.ok);
  EXPECT_EQ(check.files[0].state, FileState::kChecksumMismatch);
}

TEST(Models, UnknownModelHasNoDigest) {
  const auto check = verify_model(default_model_dir(), "posenet");
  EXPECT_FALSE(check.ok);
  EXPECT_NE(check.problem.find("no pinned digest"), std::string::npos);
}

}  // namespace
}  // namespace pose::models
