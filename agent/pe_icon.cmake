# heirloom_pe_icon: the icon of a Windows program, read from its .exe's resources and handed
# over as a PNG (agent/guest/pe_icon.hpp). It lives in its own file, like guest_protocol.cmake,
# because the fuzz build, which skips agent/, includes it too. It needs the guest protocol's
# limits and zlib for the PNG it writes; zlib is linked from its static archive, so the static
# heirloom-guest still needs nothing but glibc.
include(${CMAKE_CURRENT_LIST_DIR}/guest_protocol.cmake)
if(NOT TARGET heirloom_pe_icon)
  find_library(HEIRLOOM_ZLIB_STATIC NAMES libz.a REQUIRED) # Debian: zlib1g-dev
  find_path(HEIRLOOM_ZLIB_INCLUDE zlib.h REQUIRED)
  add_library(heirloom_pe_icon
    ${CMAKE_CURRENT_LIST_DIR}/guest/pe_icon.cpp
    ${CMAKE_CURRENT_LIST_DIR}/guest/icon_image.cpp)
  target_include_directories(heirloom_pe_icon PUBLIC ${CMAKE_CURRENT_LIST_DIR})
  target_include_directories(heirloom_pe_icon PRIVATE ${HEIRLOOM_ZLIB_INCLUDE})
  target_link_libraries(heirloom_pe_icon
    PUBLIC heirloom_guest_protocol
    PRIVATE ${HEIRLOOM_ZLIB_STATIC})
endif()
