# heirloom_guest_protocol: the guest channel's framing and messages. It lives in its own file
# because the fuzz build, which skips agent/, includes it too. It links only nlohmann-json
# (header-only) and takes common's header-only error types (error.hpp) by include path, not
# heirloom_common itself, so the static heirloom-guest stays free of OpenSSL and libsodium.
if(NOT TARGET heirloom_guest_protocol)
  add_library(heirloom_guest_protocol ${CMAKE_CURRENT_LIST_DIR}/src/guest_protocol.cpp)
  target_include_directories(heirloom_guest_protocol PUBLIC
    ${CMAKE_CURRENT_LIST_DIR}/include
    ${PROJECT_SOURCE_DIR}/common/include)
  target_link_libraries(heirloom_guest_protocol PUBLIC nlohmann_json::nlohmann_json)
endif()
