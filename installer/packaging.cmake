# Install rules and Debian packages (CPack): one .deb per component.
#   heirloom-server   the server, its systemd unit, a default config, the service user
#   heirloom-agent    the endpoint agent (user unit), the `heirloom` CLI, the tray (autostart)
#                     and the desktop integration
#   heirloom-console  the admin policy console
#   heirloom-image    packing, inspecting and seeding images, and the guest image recipe
#   heirloom-admin    the admin command line
# Build them with: cmake --build build --target package  (or: cd build && cpack -G DEB)
# tests/packages/test-packages.sh installs, upgrades and removes them in a fresh Debian 12 root.

include(GNUInstallDirs)
set(HEIRLOOM_PACKAGING ${CMAKE_CURRENT_LIST_DIR}/packaging)
set(HEIRLOOM_SYSTEMD ${CMAKE_CURRENT_LIST_DIR}/systemd)

# heirloom-server
install(TARGETS heirloom-server RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT server)
install(FILES ${HEIRLOOM_SYSTEMD}/heirloom-server.service DESTINATION lib/systemd/system
        COMPONENT server)
install(FILES ${HEIRLOOM_PACKAGING}/server.json DESTINATION /etc/heirloom COMPONENT server)
install(FILES ${CMAKE_SOURCE_DIR}/docs/server.md ${CMAKE_SOURCE_DIR}/docs/api.md
              ${CMAKE_SOURCE_DIR}/docs/policy.md ${CMAKE_SOURCE_DIR}/docs/security.md
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/heirloom-server COMPONENT server)

# heirloom-agent
install(TARGETS heirloom-agent heirloom heirloom-tray RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        COMPONENT agent)
# The desktop integration: heirloom-open routes files and links; the agent writes each user's
# menu entries itself (docs/shell-integration.md).
install(TARGETS heirloom-open RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT agent)
install(FILES ${HEIRLOOM_SYSTEMD}/heirloom-agent.service DESTINATION lib/systemd/user
        COMPONENT agent)
install(FILES ${HEIRLOOM_PACKAGING}/heirloom-tray.desktop DESTINATION /etc/xdg/autostart
        COMPONENT agent)
install(FILES ${CMAKE_SOURCE_DIR}/docs/agent.md ${CMAKE_SOURCE_DIR}/docs/vm.md
              ${CMAKE_SOURCE_DIR}/docs/shell-integration.md
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/heirloom-agent COMPONENT agent)

# heirloom-console
install(TARGETS heirloom-console RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT console)
install(FILES ${HEIRLOOM_PACKAGING}/heirloom-console.desktop
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/applications COMPONENT console)
install(FILES ${CMAKE_SOURCE_DIR}/docs/console.md
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/heirloom-console COMPONENT console)

# heirloom-image, with heirloom-guest and the recipe that puts it into a guest image
install(TARGETS heirloom-image RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT image)
install(TARGETS heirloom-guest RUNTIME DESTINATION lib/heirloom COMPONENT image)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/installer/guest/ DESTINATION share/heirloom/guest
        COMPONENT image USE_SOURCE_PERMISSIONS)
install(FILES ${CMAKE_SOURCE_DIR}/docs/image-engine.md ${CMAKE_SOURCE_DIR}/docs/formats.md
              ${CMAKE_SOURCE_DIR}/docs/guest-image.md
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/heirloom-image COMPONENT image)

# heirloom-admin
install(TARGETS heirloom-admin RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT admin)
install(FILES ${CMAKE_SOURCE_DIR}/docs/api.md
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/heirloom-admin COMPONENT admin)

# The package's own configuration file is a conffile: an admin's edits survive upgrades.
file(WRITE ${CMAKE_BINARY_DIR}/packaging/server/conffiles "/etc/heirloom/server.json\n")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME heirloom)
set(CPACK_PACKAGE_VENDOR "Heirloom")
set(CPACK_PACKAGE_CONTACT "Heirloom developers <heirloom-dev@lists.example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "legacy applications from managed, encrypted VM images")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_GROUPING IGNORE)
set(CPACK_COMPONENTS_ALL server agent console image admin)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://heirloom.example.org")

set(CPACK_DEBIAN_SERVER_PACKAGE_NAME heirloom-server)
set(CPACK_COMPONENT_SERVER_DESCRIPTION
    "Heirloom image and policy server\n Stores versioned, encrypted VM images and the policies that give them to directory (LDAP) users and groups; agents sync by block deltas. Set it up with 'heirloom-server init'.")
set(CPACK_DEBIAN_SERVER_PACKAGE_DEPENDS "passwd")
set(CPACK_DEBIAN_SERVER_PACKAGE_CONTROL_EXTRA
    "${HEIRLOOM_PACKAGING}/server/postinst;${HEIRLOOM_PACKAGING}/server/prerm;${HEIRLOOM_PACKAGING}/server/postrm;${CMAKE_BINARY_DIR}/packaging/server/conffiles")

set(CPACK_DEBIAN_AGENT_PACKAGE_NAME heirloom-agent)
set(CPACK_COMPONENT_AGENT_DESCRIPTION
    "Heirloom endpoint agent\n Syncs the workspaces a user is given, runs them in a hidden VM (QEMU) and shows their published applications as ordinary windows, launched from the application menu.")
set(CPACK_DEBIAN_AGENT_PACKAGE_DEPENDS "qemu-system-x86, qemu-utils")
set(CPACK_DEBIAN_AGENT_PACKAGE_RECOMMENDS "xpra, xdg-utils, libnotify-bin")
set(CPACK_DEBIAN_AGENT_PACKAGE_CONTROL_EXTRA
    "${HEIRLOOM_PACKAGING}/agent/postinst;${HEIRLOOM_PACKAGING}/agent/postrm")

set(CPACK_DEBIAN_CONSOLE_PACKAGE_NAME heirloom-console)
set(CPACK_COMPONENT_CONSOLE_DESCRIPTION
    "Heirloom admin policy console\n Manages images, workspaces, published applications, assignments and device controls, and shows which endpoint runs what.")

set(CPACK_DEBIAN_IMAGE_PACKAGE_NAME heirloom-image)
set(CPACK_COMPONENT_IMAGE_DESCRIPTION
    "Heirloom image tools\n Packs VHD images into encrypted, signed, content-addressed repositories, writes removable-media seeds, and builds the demo guest image.")
set(CPACK_DEBIAN_IMAGE_PACKAGE_RECOMMENDS "qemu-utils")
set(CPACK_DEBIAN_IMAGE_PACKAGE_SUGGESTS "mmdebstrap, syslinux, mtools, dosfstools, fdisk, e2fsprogs")

set(CPACK_DEBIAN_ADMIN_PACKAGE_NAME heirloom-admin)
set(CPACK_COMPONENT_ADMIN_DESCRIPTION
    "Heirloom admin command line\n Scripts the server's admin API: pushing image versions, workspaces, apps, assignments, endpoints and the event report.")

include(CPack)
