#pragma once

// The event report: what endpoints reported (syncs, launches, failures, lease warnings),
// filtered by type, user and period, exported as CSV, and the roll-out chart of an image's
// versions drawn from the sync-done events.

#include "admin_api.hpp"

#include <QWidget>

class QComboBox;
class QLabel;
class QLineEdit;
class QTableWidget;

namespace heirloom::console {

class RolloutChart;

class ReportPage : public QWidget {
    Q_OBJECT
  public:
    ReportPage(Connection connection, QWidget* parent = nullptr);

    // Loads the events that match the filters, and the roll-out.
    void refresh();
    // Saves the filtered report as CSV in file; the result is shown on the status line.
    void export_csv(const QString& file);

  Q_SIGNALS:
    void report_loaded();
    void exported(bool ok);

  private:
    EventFilter filter() const;
    void show_rollout();

    Connection connection_;
    std::vector<Event> syncs_;
    QComboBox* type_;
    QLineEdit* user_;
    QComboBox* period_;
    QTableWidget* table_;
    QComboBox* chart_image_;
    RolloutChart* chart_;
    QLabel* status_;
};

} // namespace heirloom::console
