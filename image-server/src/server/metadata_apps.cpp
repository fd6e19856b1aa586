// The apps guests report per image version (Metadata, see metadata.hpp).

#include "heirloom/common/json.hpp"
#include "heirloom/server/metadata.hpp"
#include "sqlite.hpp"

namespace heirloom::server {

using sql::Statement;

Status Metadata::save_app_report(const AppReport& report) {
    std::lock_guard lock(mutex_);
    auto tx = HL_TRY(sql::Transaction::begin(db_));
    auto version = static_cast<std::int64_t>(report.version);
    auto drop =
        HL_TRY(Statement::prepare(db_, "DELETE FROM app_reports WHERE image = ? AND version = ?"));
    drop.bind(1, report.image).bind(2, version);
    HL_TRY(drop.run());
    auto header = HL_TRY(Statement::prepare(
        db_, "INSERT INTO app_reports(image, version, agent, user, reported) VALUES(?,?,?,?,?)"));
    header.bind(1, report.image).bind(2, version).bind(3, report.agent).bind(4, report.user);
    header.bind(5, report.reported);
    HL_TRY(header.run());
    auto insert = HL_TRY(Statement::prepare(
        db_, "INSERT INTO reported_apps(image, version, id, name, command, file_types, icon, "
             "position) VALUES(?,?,?,?,?,?,?,?)"));
    for (std::size_t i = 0; i < report.apps.size(); ++i) {
        const auto& app = report.apps[i];
        Json types = app.file_types;
        insert.bind(1, report.image).bind(2, version).bind(3, app.id).bind(4, app.name);
        insert.bind(5, app.command).bind(6, types.dump()).bind(8, static_cast<std::int64_t>(i));
        if (!app.icon_png.empty())
            insert.bind(7, ByteView(app.icon_png));
        HL_TRY(insert.run());
        insert.reset();
    }
    return tx.commit();
}

Result<std::optional<AppReport>> Metadata::app_report(std::string_view image,
                                                      std::optional<std::uint64_t> version) {
    std::lock_guard lock(mutex_);
    auto header = HL_TRY(Statement::prepare(
        db_, "SELECT r.version, r.agent, r.user, COALESCE(a.hostname, ''), r.reported "
             "FROM app_reports r LEFT JOIN agents a ON a.id = r.agent "
             "WHERE r.image = ? AND (? = 0 OR r.version = ?) ORDER BY r.version DESC LIMIT 1"));
    auto wanted = static_cast<std::int64_t>(version.value_or(0));
    header.bind(1, image).bind(2, wanted).bind(3, wanted);
    if (!HL_TRY(header.step()))
        return std::optional<AppReport>();
    AppReport report;
    report.image = image;
    report.version = static_cast<std::uint64_t>(header.integer(0));
    report.agent = header.text(1);
    report.user = header.text(2);
    report.hostname = header.text(3);
    report.reported = header.integer(4);
    auto apps = HL_TRY(Statement::prepare(
        db_, "SELECT id, name, command, file_types, icon IS NOT NULL FROM reported_apps "
             "WHERE image = ? AND version = ? ORDER BY position"));
    apps.bind(1, image).bind(2, static_cast<std::int64_t>(report.version));
    while (HL_TRY(apps.step())) {
        ReportedApp app{apps.text(0), apps.text(1), apps.text(2), {}, {}};
        auto types = parse_json(apps.text(3));
        if (!types || !types->is_array())
            return fail(Errc::corrupt, "metadata database: the file types of reported app " +
                                           app.id + " are damaged");
        for (const auto& t : *types)
            if (t.is_string())
                app.file_types.push_back(t.get<std::string>());
        report.has_icon.push_back(apps.integer(4) != 0);
        report.apps.push_back(std::move(app));
    }
    return report;
}

Result<std::optional<Bytes>> Metadata::app_icon(std::string_view image, std::uint64_t version,
                                                std::string_view id) {
    std::lock_guard lock(mutex_);
    auto s = HL_TRY(Statement::prepare(db_, "SELECT icon FROM reported_apps WHERE image = ? AND "
                                            "version = ? AND id = ? AND icon IS NOT NULL"));
    s.bind(1, image).bind(2, static_cast<std::int64_t>(version)).bind(3, id);
    if (!HL_TRY(s.step()))
        return std::optional<Bytes>();
    return s.blob(0);
}

} // namespace heirloom::server
