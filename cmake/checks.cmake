# Build-time checks (style rule 20), in ALL so that a plain build fails on them:
#
#   check_layers         cmake/check_layers.sh: every #include of a layer folder names a folder the layer may
#                        use (the table is in the script), x_internal.h stays in folder x, <llhttp.h> only in
#                        protocol/. Re-runs when a file of a layer folder changes.
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
