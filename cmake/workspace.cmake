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
  # Test code (property WB_TEST_CODE, set by wb_test) is optimised lightly: it runs for seconds, while -O3 on its
  # templates (Beast, GoogleTest, JSON) doubles its compile time. The code under test keeps the build type's level.
  target_compile_options(${target} PRIVATE $<$<BOOL:$<TARGET_PROPERTY:WB_TEST_CODE>>:-O1>)
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
  set_target_properties(${name} PROPERTIES WB_TEST_CODE ON)
  wb_target_defaults(${name})
  target_compile_definitions(${name} PRIVATE WB_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
                                             WB_SHARED_DIR="${PROJECT_SOURCE_DIR}/../shared")
  gtest_discover_tests(${name}
    PROPERTIES LABELS "${ARG_LABELS}" ENVIRONMENT "${ARG_ENVIRONMENT}"
    DISCOVERY_TIMEOUT 60)
endfunction()

# Precompiled headers, for the two header sets that dominate build time: LibTorch's ATen (in about 40 translation
# units, 10-20 s each to parse) and Boost.Beast/Asio. Each set is compiled once, by a target that builds nothing
# else, and every target that asks reuses it. Reuse needs the same compiler flags, optimisation level included
# (GCC 13 refuses a header made at -O3 in an -O1 compile): every target here has the same flags (wb_target_defaults)
# and a precompiled header is made for test code or for library code. CMake adds -Winvalid-pch, which says when a
# header is refused.
# wb_pch(<name> HEADERS ... [DEPS ...] [TEST_CODE]): the target <name> compiles the precompiled header of HEADERS,
# at the level of test code when TEST_CODE is given.
function(wb_pch name)
  cmake_parse_arguments(ARG "TEST_CODE" "" "HEADERS;DEPS" ${ARGN})
  set(source ${CMAKE_BINARY_DIR}/pch/${name}.cpp)
  if(NOT EXISTS ${source})
    file(WRITE ${source} "// Only the precompiled header of ${name} is built from here.\n")
  endif()
  add_library(${name} OBJECT ${source})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  set_target_properties(${name} PROPERTIES WB_TEST_CODE ${ARG_TEST_CODE})
  wb_target_defaults(${name})
  target_precompile_headers(${name} PRIVATE ${ARG_HEADERS})
endfunction()

# wb_reuse_pch(<target> <name>): <target>'s sources are compiled with the precompiled header of wb_pch(<name>).
# A test that takes a library's header is compiled at the library's level; the reverse is a mistake.
function(wb_reuse_pch target name)
  if(NOT WB_PCH OR NOT TARGET ${name} OR NOT TARGET ${target} OR target STREQUAL name)
    return()
  endif()
  get_target_property(header_for_tests ${name} WB_TEST_CODE)
  get_target_property(target_is_test ${target} WB_TEST_CODE)
  if(header_for_tests AND NOT target_is_test)
    message(FATAL_ERROR "${target} is library code: it cannot reuse ${name}, made for test code")
  endif()
  if(target_is_test AND NOT header_for_tests)
    set_target_properties(${target} PROPERTIES WB_TEST_CODE OFF)
  endif()
  target_precompile_headers(${target} REUSE_FROM ${name})
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
