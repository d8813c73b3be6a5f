# Shared build rules: warnings, sanitizers, coverage, and the module/test helpers every CMakeLists uses.

set(WB_WARNING_FLAGS -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Wnon-virtual-dtor
    -Wold-style-cast -Woverloaded-virtual -Wimplicit-fallthrough)
# GCC 12's -Wrestrict reports std::string concatenation inside libstdc++ at -O3 (GCC bug 105329).
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  list(APPEND WB_WARNING_FLAGS -Wno-restrict)
endif()
if(WB_WARNINGS_AS_ERRORS)
  list(APPEND WB_WARNING_FLAGS -Werror)
endif()

if(WB_SANITIZE)
  # -O1 and line tables only (-g1): what the sanitizers' reports need, and a third less compile time than the
  # build type's -O2 -g. Given after the build type's flags, so these win.
  add_compile_options(-O1 -g1)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# Headers of third-party libraries are included as SYSTEM so their warnings don't fail our build.
function(wb_target_defaults target)
  target_compile_options(${target} PRIVATE ${WB_WARNING_FLAGS})
  if(WB_COVERAGE)
    target_compile_options(${target} PRIVATE --coverage -O0)
    target_link_options(${target} PUBLIC --coverage)
  endif()
endfunction()

# wb_module(<name> SOURCES ... [DEPS ...] [PRIVATE_DEPS ...])
# One module = one folder = one target. `core/config` becomes target core_config, alias core::config.
function(wb_module path)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  string(REPLACE "/" "_" target ${path})
  string(REPLACE "/" "::" alias ${path})
  add_library(${target} STATIC ${ARG_SOURCES})
  if(NOT alias STREQUAL target)
    add_library(${alias} ALIAS ${target})
  endif()
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${target} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  wb_target_defaults(${target})
  set_property(GLOBAL APPEND PROPERTY WB_LIBRARY_TARGETS ${target})
endfunction()

# wb_test(<name> SOURCES ... DEPS ... LABELS unit|integration|slow|gpu [ENVIRONMENT ...])
# Every test binary registers its cases with CTest so `ctest -L unit` selects by label.
function(wb_test name)
  if(NOT WB_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS;ENVIRONMENT" ${ARGN})
  # The sanitizer build runs only unit tests (CMakePresets.json): building the others would only cost CI minutes.
  if(WB_SANITIZE AND NOT "unit" IN_LIST ARG_LABELS)
    return()
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main)
  # Test code is optimised lightly: it runs for seconds, while -O3 on its templates (Beast, GoogleTest, JSON)
  # doubles its compile time. The code under test keeps the build type's level (the coverage build's -O0 wins).
  target_compile_options(${name} PRIVATE -O1)
  wb_target_defaults(${name})
  target_compile_definitions(${name} PRIVATE WB_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
                                             WB_SHARED_DIR="${PROJECT_SOURCE_DIR}/../shared")
  gtest_discover_tests(${name}
    PROPERTIES LABELS "${ARG_LABELS}" ENVIRONMENT "${ARG_ENVIRONMENT}"
    DISCOVERY_TIMEOUT 60)
endfunction()

# Precompiled headers, for the two header sets that dominate build time: LibTorch's ATen (in about 40 translation
# units, 10-20 s each to parse) and Boost.Beast/Asio. Each set is compiled once, by a target that builds nothing
# else, and every target that asks reuses it: reuse needs the same compiler flags, and every target here has them
# (wb_target_defaults); CMake adds -Winvalid-pch, which says when one does not.
# wb_pch(<name> HEADERS ... [DEPS ...]): the target <name> compiles the precompiled header of HEADERS.
function(wb_pch name)
  cmake_parse_arguments(ARG "" "" "HEADERS;DEPS" ${ARGN})
  set(source ${CMAKE_BINARY_DIR}/pch/${name}.cpp)
  if(NOT EXISTS ${source})
    file(WRITE ${source} "// Only the precompiled header of ${name} is built from here.\n")
  endif()
  add_library(${name} OBJECT ${source})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  wb_target_defaults(${name})
  target_precompile_headers(${name} PRIVATE ${ARG_HEADERS})
endfunction()

# wb_reuse_pch(<target> <name>): <target>'s sources are compiled with the precompiled header of wb_pch(<name>).
function(wb_reuse_pch target name)
  if(WB_PCH AND TARGET ${name} AND TARGET ${target} AND NOT target STREQUAL name)
    target_precompile_headers(${target} REUSE_FROM ${name})
  endif()
endfunction()

# LibTorch's exported flags carry -D_GLIBCXX_USE_CXX11_ABI; its headers are marked SYSTEM to keep our warnings ours.
function(wb_use_torch target visibility)
  target_link_libraries(${target} ${visibility} ${TORCH_LIBRARIES})
  target_include_directories(${target} SYSTEM ${visibility} ${TORCH_INCLUDE_DIRS})
  if(WB_TORCH_PCH)
    wb_reuse_pch(${target} ${WB_TORCH_PCH})  # a folder's choice (src/vram takes the one with torch::nn)
  else()
    wb_reuse_pch(${target} wb_pch_torch)
  endif()
endfunction()
