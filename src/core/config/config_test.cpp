#include "core/config/config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>

namespace core::config {
namespace {

const std::vector<Option> kTable = {
    {"profile", "profile", "TEST_PROFILE", "", "machine profile", OptionKind::kConfigFile},
    {"config", "config", "TEST_CONFIG", "", "config file", OptionKind::kConfigFile},
    {"pose.model",
     "model",
     "TEST_MODEL",
     "movenet-lightning",
     "model",
     OptionKind::kString,
     {"movenet-lightning", "movenet-thunder"}},
    {"pose.batch_size", "batch-size", "TEST_BATCH", "1", "batch", OptionKind::kInt},
    {"pose.fp16", "fp16", "", "false", "half precision", OptionKind::kBool},
    {"vram.budget", "budget", "TEST_BUDGET", "8GB", "budget", OptionKind::kBytes},
    {"serve.tokens", "token", "TEST_TOKENS", "", "tokens, comma-separated", OptionKind::kString},
};

class ConfigTest : public ::testing::Test {
 protected:
  std::filesystem::path write(const std::string& name, const std::string& text) {
    auto path = dir_ / name;
    std::ofstream(path) << text;
    return path;
  }
  Result<Config> resolve(std::vector<std::string> args) {
    Sources sources;
    sources.args = std::move(args);
    sources.getenv = [this](const std::string& name) -> std::optional<std::string> {
      const auto it = env_.find(name);
      return it == env_.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
    return Config::resolve(kTable, sources);
  }
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("config_test_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(ConfigTest, DefaultsApplyWhenNothingIsSet) {
  auto config = resolve({});
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->text("pose.model"), "movenet-lightning");
  EXPECT_EQ(config->integer("pose.batch_size"), 1);
  EXPECT_FALSE(config->boolean("pose.fp16"));
  EXPECT_EQ(config->bytes("vram.budget"), 8'000'000'000u);
  EXPECT_EQ(config->origin("pose.model"), "default");
  EXPECT_FALSE(config->is_set("pose.model"));
}

TEST_F(ConfigTest, ListsSplitAtCommasTrimmedWithoutEmptyItems) {
  auto none = resolve({});
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_TRUE(none->list("serve.tokens").empty());
  env_["TEST_TOKENS"] = " alpha, beta ,,gamma delta,  ";
  auto some = resolve({});
  ASSERT_TRUE(some.ok()) << some.error().message;
  EXPECT_EQ(some->list("serve.tokens"), (std::vector<std::string>{"alpha", "beta", "gamma delta"}));
}

TEST_F(ConfigTest, LayersOverrideInOrderProfileFileEnvFlag) {
  const auto profile = write("profile.toml", "[pose]\nmodel = \"movenet-thunder\"\nbatch_size = 2\nfp16 = true\n");
  const auto file = write("config.toml", "[pose]\nbatch_size = 3\n[vram]\nbudget = \"12GiB\"\n");
  env_["TEST_BATCH"] = "4";
  auto config = resolve({"--profile", profile.string(), "--config=" + file.string(), "--budget", "6GB", "clip.mp4"});
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->text("pose.model"), "movenet-thunder");  // profile
  EXPECT_TRUE(config->boolean("pose.fp16"));                 // profile
  EXPECT_EQ(config->integer("pose.batch_size"), 4);          // env beats file
  EXPECT_EQ(config->origin("pose.batch_size"), "env TEST_BATCH");
  EXPECT_EQ(config->bytes("vram.budget"), 6'000'000'000u);  // flag beats file
  EXPECT_EQ(config->origin("vram.budget"), "flag --budget");
  EXPECT_EQ(config->positional(), std::vector<std::string>{"clip.mp4"});
}

TEST_F(ConfigTest, FlagBeatsEnvironment) {
  env_["TEST_MODEL"] = "movenet-thunder";
  auto config = resolve({"--model", "movenet-lightning"});
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->text("pose.model"), "movenet-lightning");
  EXPECT_EQ(config->origin("pose.model"), "flag --model");
}

TEST_F(ConfigTest, ConfigFileFromEnvironment) {
  env_["TEST_CONFIG"] = write("c.toml", "[pose]\nbatch_size = 7\n").string();
  auto config = resolve({});
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->integer("pose.batch_size"), 7);
}

TEST_F(ConfigTest, ExplicitMissingFileIsAnError) {
  auto config = resolve({"--config", (dir_ / "nope.toml").string()});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code, ErrorCode::kNotFound);
  EXPECT_NE(config.error().message.find("nope.toml"), std::string::npos);
}

TEST_F(ConfigTest, MalformedTomlNamesFileAndLine) {
  const auto file = write("bad.toml", "[pose]\nbatch_size = 3\nmodel = \"unterminated\n");
  auto config = resolve({"--config", file.string()});
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.error().message.find("bad.toml line 3"), std::string::npos) << config.error().message;
}

TEST_F(ConfigTest, UnknownKeyInOwnSectionSuggestsTheRightOne) {
  const auto file = write("typo.toml", "[pose]\nbatch_sise = 3\n");
  auto config = resolve({"--config", file.string()});
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.error().message.find("did you mean 'pose.batch_size'"), std::string::npos) << config.error().message;
}

TEST_F(ConfigTest, OtherApplicationsSectionsAreIgnored) {
  const auto file = write("shared.toml", "[machine]\ncpu = \"x\"\n[service]\nport = 8080\n[pose]\nbatch_size = 2\n");
  auto config = resolve({"--config", file.string()});
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->integer("pose.batch_size"), 2);
}

TEST_F(ConfigTest, WrongKindNamesTheSource) {
  env_["TEST_BATCH"] = "many";
  auto config = resolve({});
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.error().message.find("env TEST_BATCH"), std::string::npos);
  EXPECT_NE(config.error().message.find("integer"), std::string::npos);
}

TEST_F(ConfigTest, ChoicesAreEnforced) {
  auto config = resolve({"--model", "posenet"});
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.error().message.find("one of 'movenet-lightning' 'movenet-thunder'"), std::string::npos);
}

TEST_F(ConfigTest, UnknownFlagSuggests) {
  auto config = resolve({"--modle", "x"});
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.error().message.find("did you mean 'model'"), std::string::npos);
}

TEST_F(ConfigTest, FlagWithoutValueIsAnError) {
  auto config = resolve({"--batch-size"});
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.error().message.find("needs a value"), std::string::npos);
}

TEST_F(ConfigTest, BoolFlagsAndDoubleDash) {
  auto config = resolve({"--fp16", "--", "--not-a-flag"});
  ASSERT_TRUE(config.ok());
  EXPECT_TRUE(config->boolean("pose.fp16"));
  EXPECT_EQ(config->positional(), std::vector<std::string>{"--not-a-flag"});
}

TEST_F(ConfigTest, HelpIsRequestedAndUsageListsEverything) {
  auto config = resolve({"--help"});
  ASSERT_TRUE(config.ok());
  EXPECT_TRUE(config->help_requested());
  const std::string text = usage(kTable);
  EXPECT_NE(text.find("--batch-size"), std::string::npos);
  EXPECT_NE(text.find("env TEST_BATCH"), std::string::npos);
  EXPECT_NE(text.find("key pose.batch_size"), std::string::npos);
}

TEST(Bytes, ParsesUnits) {
  EXPECT_EQ(parse_bytes("8GB").value(), 8'000'000'000u);
  EXPECT_EQ(parse_bytes("8GiB").value(), 8ull << 30);
  EXPECT_EQ(parse_bytes("1.5 MiB").value(), 1572864u);
  EXPECT_EQ(parse_bytes("1024").value(), 1024u);
  EXPECT_FALSE(parse_bytes("GB").ok());
  EXPECT_FALSE(parse_bytes("-1GB").ok());
  EXPECT_FALSE(parse_bytes("eight").ok());
  EXPECT_EQ(format_bytes(8'000'000'000u), "8.00 GB");
  EXPECT_EQ(format_bytes(12), "12 B");
}

}  // namespace
}  // namespace core::config
