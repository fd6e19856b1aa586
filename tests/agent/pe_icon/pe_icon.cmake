# Windows programs for the PE icon reader's tests (tests/agent/pe_icon_*_test.cpp), built with
# mingw-w64 from iconapp.c and the icons make_icons.py writes (which also writes the pixels a
# reader must decode from each image). Included from tests/CMakeLists.txt.
find_program(HEIRLOOM_MINGW_CC i686-w64-mingw32-gcc)
find_program(HEIRLOOM_MINGW_WINDRES i686-w64-mingw32-windres)
if(NOT HEIRLOOM_MINGW_CC OR NOT HEIRLOOM_MINGW_WINDRES)
  message(FATAL_ERROR "The PE icon tests build 32-bit Windows programs with mingw-w64, which is "
    "missing: install it with bash installer/install-deps.sh (Debian package g++-mingw-w64-i686)")
endif()
# 64-bit programs (PE32+) are built too when mingw-w64 for x86-64 is there; without it the tests
# read a PE32+ file they make around the 32-bit program's resources.
find_program(HEIRLOOM_MINGW64_CC x86_64-w64-mingw32-gcc)
find_program(HEIRLOOM_MINGW64_WINDRES x86_64-w64-mingw32-windres)
find_package(Python3 REQUIRED COMPONENTS Interpreter)
pkg_check_modules(HEIRLOOM_TEST_PNG REQUIRED IMPORTED_TARGET libpng16)

set(pe_icon_source ${CMAKE_CURRENT_LIST_DIR})
set(pe_icon_dir ${CMAKE_CURRENT_BINARY_DIR}/pe_icon)
set(pe_icon_icons ${pe_icon_dir}/app.ico ${pe_icon_dir}/depths.ico ${pe_icon_dir}/seed.ico)
add_custom_command(OUTPUT ${pe_icon_icons}
  COMMAND Python3::Interpreter ${pe_icon_source}/make_icons.py ${pe_icon_dir}
  DEPENDS ${pe_icon_source}/make_icons.py
  COMMENT "Writing the PE icon tests' icons")

set(pe_icon_programs)
macro(heirloom_pe_icon_program name rc cc windres entry)
  add_custom_command(OUTPUT ${pe_icon_dir}/${name}.exe
    COMMAND ${windres} -I ${pe_icon_dir} ${pe_icon_source}/${rc}.rc -o ${pe_icon_dir}/${name}.res.o
    # No C runtime: the program only carries resources, and stays a few KiB.
    COMMAND ${cc} -Os -s -nostdlib -Wl,-e,${entry} ${pe_icon_source}/iconapp.c
      ${pe_icon_dir}/${name}.res.o -o ${pe_icon_dir}/${name}.exe
    DEPENDS ${pe_icon_source}/${rc}.rc ${pe_icon_source}/iconapp.c ${pe_icon_icons}
    COMMENT "Building the Windows program ${name}.exe (mingw-w64)")
  list(APPEND pe_icon_programs ${pe_icon_dir}/${name}.exe)
endmacro()
foreach(program app named seed)
  heirloom_pe_icon_program(${program} ${program} ${HEIRLOOM_MINGW_CC} ${HEIRLOOM_MINGW_WINDRES} _entry)
endforeach()
if(HEIRLOOM_MINGW64_CC AND HEIRLOOM_MINGW64_WINDRES)
  heirloom_pe_icon_program(app64 app ${HEIRLOOM_MINGW64_CC} ${HEIRLOOM_MINGW64_WINDRES} entry)
  target_compile_definitions(heirloom_tests PRIVATE HEIRLOOM_PE_ICON_HAVE_APP64=1)
endif()
add_custom_target(heirloom_pe_icon_programs DEPENDS ${pe_icon_programs})
add_dependencies(heirloom_tests heirloom_pe_icon_programs)
target_compile_definitions(heirloom_tests PRIVATE HEIRLOOM_PE_ICON_DATA="${pe_icon_dir}")
target_link_libraries(heirloom_tests PRIVATE heirloom_pe_icon PkgConfig::HEIRLOOM_TEST_PNG)
