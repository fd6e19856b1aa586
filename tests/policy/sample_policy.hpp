#pragma once

// A small policy set shared by the policy tests: two workspaces, two apps and assignments to
// a user and to groups, built in code so each test can change one thing.

#include "heirloom/policy/model.hpp"

namespace heirloom::policy::test {

inline Assignment assignment(std::string id, std::string workspace, PrincipalKind kind,
                             std::string name, DeviceControls controls) {
    Assignment a;
    a.id = std::move(id);
    a.workspace_id = std::move(workspace);
    a.principal = Principal{kind, std::move(name)};
    a.controls = controls;
    a.expires_at = 0;
    a.offline_limit = 7 * 86400;
    return a;
}

inline DeviceControls open_controls() {
    return {DataFlow::both, DataFlow::both, Printing::on, RemovableMedia::read_write};
}

inline PolicySet sample_policy() {
    PolicySet set;
    set.images.push_back({"payroll", 3, std::nullopt});
    set.images.push_back({"cad", std::nullopt, 12});

    Workspace payroll;
    payroll.id = "payroll-ws";
    payroll.display_name = "Payroll (1998)";
    payroll.image = "payroll";
    payroll.persistence = Persistence::revertible;
    payroll.memory_mib = 512;
    payroll.frame_colour = "#aa3300";
    payroll.host_check = std::vector<std::string>{"/usr/bin/check-vpn", "--quiet"};
    payroll.network = Network{NetworkMode::allow_list, {"payroll.example.com", "*.corp.example"}};
    set.workspaces.push_back(payroll);

    Workspace cad;
    cad.id = "cad-ws";
    cad.display_name = "CAD Station";
    cad.image = "cad";
    cad.memory_mib = 4096;
    cad.network = Network{NetworkMode::off, {}};
    set.workspaces.push_back(cad);

    set.apps.push_back({"payroll-app",
                        "payroll-ws",
                        "Payroll",
                        {"C:\\PAYROLL\\PAY.EXE", "/s"},
                        "payroll-icon",
                        {"application/x-payroll"},
                        {"https://payroll.example/*"}});
    set.apps.push_back({"cad-app",
                        "cad-ws",
                        "AutoDraft",
                        {"C:\\CAD\\DRAFT.EXE"},
                        "cad-icon",
                        {"image/vnd.dwg", "application/dxf"},
                        {}});

    set.assignments.push_back(
        assignment("a-finance", "payroll-ws", PrincipalKind::group, "finance", open_controls()));
    set.assignments.push_back(
        assignment("a-bob-cad", "cad-ws", PrincipalKind::user, "bob",
                   {DataFlow::host_to_guest, DataFlow::off, Printing::on, RemovableMedia::off}));
    return set;
}

} // namespace heirloom::policy::test
