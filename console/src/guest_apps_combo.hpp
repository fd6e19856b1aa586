#pragma once

// A combo box of the apps guests reported for a workspace's image, with their icons, names
// and commands: picking one fills the app form. Its first entry is "type it in by hand".

#include "reported_apps.hpp"

#include <QComboBox>
#include <QIcon>

namespace heirloom::console {

class GuestAppsCombo : public QComboBox {
    Q_OBJECT
  public:
    GuestAppsCombo(Connection connection, QWidget* parent = nullptr);

    // Fetches the apps reported for image (in the background); an empty image clears the list.
    void load(const std::string& image);
    // The icon a guest reported for app id of the image loaded (null when none).
    QIcon icon(const std::string& id) const;
    // The apps of the last load.
    const ReportedApps& reported() const { return reported_; }

  Q_SIGNALS:
    // The admin picked a reported app.
    void picked(const heirloom::console::ReportedApp& app);
    // A load finished (icons may have changed).
    void loaded();

  private:
    void show_apps(ReportedApps apps);

    Connection connection_;
    std::string image_; // the image of the newest load asked for
    ReportedApps reported_;
    std::map<std::string, QIcon> icons_;
};

} // namespace heirloom::console
