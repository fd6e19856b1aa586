#include "guest_apps_combo.hpp"

#include "ui_support.hpp"

#include <QPixmap>

namespace heirloom::console {

GuestAppsCombo::GuestAppsCombo(Connection connection, QWidget* parent)
    : QComboBox(parent), connection_(std::move(connection)) {
    setObjectName(QStringLiteral("guest_apps"));
    setIconSize(QSize(32, 32));
    setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    setMinimumContentsLength(24);
    show_apps({});
    connect(this, &QComboBox::activated, this, [this](int index) {
        if (index > 0 && index <= static_cast<int>(reported_.apps.size()))
            Q_EMIT picked(reported_.apps[static_cast<std::size_t>(index - 1)]);
    });
}

void GuestAppsCombo::load(const std::string& image) {
    image_ = image;
    if (image.empty())
        return show_apps({});
    run_in_background(
        this, [c = connection_, image] { return fetch_reported_apps(c, image); },
        [this, image](Result<ReportedApps> result) {
            if (image != image_)
                return; // the admin moved on to another workspace
            if (!result) {
                ReportedApps none;
                none.image = image;
                show_apps(std::move(none));
                setToolTip(tr("The apps the guest holds could not be loaded: %1")
                               .arg(qs(result.error().message)));
                return;
            }
            show_apps(std::move(*result));
        });
}

QIcon GuestAppsCombo::icon(const std::string& id) const {
    auto it = icons_.find(id);
    return it != icons_.end() ? it->second : QIcon();
}

void GuestAppsCombo::show_apps(ReportedApps apps) {
    reported_ = std::move(apps);
    icons_.clear();
    clear();
    setToolTip(QString());
    if (!reported_.version) {
        addItem(reported_.image.empty() ? tr("Type it in by hand")
                                        : tr("None reported for %1 yet").arg(qs(reported_.image)));
        if (!reported_.image.empty())
            setToolTip(tr("No guest of %1 has reported its apps yet: they are reported when a "
                          "workspace on it starts on an endpoint. Type the app in by hand.")
                           .arg(qs(reported_.image)));
        Q_EMIT loaded();
        return;
    }
    addItem(tr("Type it in, or pick one of %1 (%2 v%3)…")
                .arg(counted(static_cast<long long>(reported_.apps.size()), tr("app"), tr("apps")))
                .arg(qs(reported_.image))
                .arg(*reported_.version));
    for (const auto& app : reported_.apps) {
        QPixmap pixmap;
        QIcon icon;
        if (!app.icon_png.empty() &&
            pixmap.loadFromData(reinterpret_cast<const uchar*>(app.icon_png.data()),
                                static_cast<uint>(app.icon_png.size()), "PNG"))
            icon = QIcon(pixmap);
        icons_[app.id] = icon;
        addItem(icon, tr("%1 — %2").arg(qs(app.name), qs(app.command)), qs(app.id));
    }
    setToolTip(tr("Reported by %1, %2")
                   .arg(qs(reported_.reported_by), format_time(reported_.reported_at)));
    Q_EMIT loaded();
}

} // namespace heirloom::console
