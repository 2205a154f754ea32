# Build-time checks (style rule 20), both in ALL so that a plain build fails on them:
#
#   check_layers         cmake/check_layers.sh: every #include of a layer folder names a folder the layer may
#                        use (the table is in the script), x_internal.h stays in folder x, <llhttp.h> only in
#                        protocol/. Re-runs when a file of a layer folder changes.
#   ag_header_check      one generated .c per header of a layer folder that includes only that header, so a
#                        header that does not compile on its own fails the build.
#
# The folders are globbed with CONFIGURE_DEPENDS: new files (and a layer folder that does not exist yet) are
# picked up without rerunning cmake by hand. A new layer goes into this list and the script's table.
set(AG_LAYER_DIRS core net persist graph runtime protocol server)

set(ag_layer_globs)
foreach(dir ${AG_LAYER_DIRS})
  list(APPEND ag_layer_globs ${PROJECT_SOURCE_DIR}/${dir}/*.c ${PROJECT_SOURCE_DIR}/${dir}/*.h
       ${PROJECT_SOURCE_DIR}/${dir}/*.def)
endforeach()
file(GLOB_RECURSE ag_layer_files CONFIGURE_DEPENDS LIST_DIRECTORIES false ${ag_layer_globs})

set(ag_header_globs)
foreach(dir ${AG_LAYER_DIRS})
  list(APPEND ag_header_globs ${PROJECT_SOURCE_DIR}/${dir}/*.h)
endforeach()
file(GLOB_RECURSE ag_layer_headers CONFIGURE_DEPENDS LIST_DIRECTORIES false RELATIVE ${PROJECT_SOURCE_DIR}
     ${ag_header_globs})

find_program(AG_BASH bash REQUIRED)
set(ag_layers_stamp ${CMAKE_BINARY_DIR}/check_layers.stamp)
add_custom_command(
  OUTPUT ${ag_layers_stamp}
  COMMAND ${AG_BASH} ${PROJECT_SOURCE_DIR}/cmake/check_layers.sh ${PROJECT_SOURCE_DIR}
  COMMAND ${CMAKE_COMMAND} -E touch ${ag_layers_stamp}
  DEPENDS ${PROJECT_SOURCE_DIR}/cmake/check_layers.sh ${ag_layer_files}
  COMMENT "Checking the layering of #includes"
  VERBATIM)
add_custom_target(check_layers ALL DEPENDS ${ag_layers_stamp})

# file(CONFIGURE) rewrites a file only when its text changes, so a reconfigure recompiles nothing.
set(ag_header_check_srcs)
foreach(h ${ag_layer_headers})
  set(src ${CMAKE_BINARY_DIR}/header_check/${h}.c)
  file(CONFIGURE OUTPUT ${src} CONTENT "#include \"${h}\"\n" @ONLY)
  list(APPEND ag_header_check_srcs ${src})
endforeach()
add_library(ag_header_check OBJECT ${ag_header_check_srcs})
# The include directories and definitions the layers' own sources compile with (jansson, libpq, llhttp...),
# taken from the libraries' usage requirements without linking them: the check need not wait for their build.
foreach(lib ag_core ag_net ag_persist ag_graph ag_runtime ag_protocol ag_server)
  if(TARGET ${lib})
    target_include_directories(ag_header_check PRIVATE $<TARGET_PROPERTY:${lib},INTERFACE_INCLUDE_DIRECTORIES>)
    target_compile_definitions(ag_header_check PRIVATE $<TARGET_PROPERTY:${lib},INTERFACE_COMPILE_DEFINITIONS>)
  endif()
endforeach()
