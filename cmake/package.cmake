# What `cmake --install` gives graph authors besides the agentd binary and the graph headers (installed
# by server/ and graph/): a CMake package, find_package(agentd), and a pkg-config file, agentd-graph.
# Both locate the headers relative to where they are installed, so a prefix chosen at install time
# (cmake --install BUILD --prefix DIR) works.
include(CMakePackageConfigHelpers)

set(AG_PACKAGE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/agentd)
file(RELATIVE_PATH AG_PACKAGE_TO_PREFIX /prefix/${AG_PACKAGE_DIR} /prefix)
set(AG_PKGCONFIG_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
file(RELATIVE_PATH AG_PKGCONFIG_TO_PREFIX /prefix/${AG_PKGCONFIG_DIR} /prefix)
# The ABI version graph/graph.h declares, for the package's version variables.
file(STRINGS ${PROJECT_SOURCE_DIR}/graph/graph.h _abi REGEX "^#define AG_GRAPH_ABI_VERSION [0-9]+")
string(REGEX REPLACE ".* ([0-9]+)$" "\\1" AG_GRAPH_ABI_VERSION "${_abi}")

configure_file(${PROJECT_SOURCE_DIR}/cmake/agentdConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/agentdConfig.cmake @ONLY)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/agentdConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/agentdConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/agentdConfigVersion.cmake
        DESTINATION ${AG_PACKAGE_DIR})

configure_file(${PROJECT_SOURCE_DIR}/cmake/agentd-graph.pc.in ${CMAKE_CURRENT_BINARY_DIR}/agentd-graph.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/agentd-graph.pc DESTINATION ${AG_PKGCONFIG_DIR})
