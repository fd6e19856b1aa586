#pragma once

// Assignments: who gets which workspace, with which device controls, until when and for how
// long offline. The directory's users and groups are searched on the left; an entry found
// there becomes the principal of the assignment in the form.

#include "admin_api.hpp"

#include <QWidget>

class QCheckBox;
class QComboBox;
class QDateTimeEdit;
class QLabel;
class QLineEdit;
class QListWidget;
class QPushButton;
class QSpinBox;
class QTableWidget;

namespace heirloom::console {

class AssignmentsPage : public QWidget {
    Q_OBJECT
  public:
    AssignmentsPage(Connection connection, QWidget* parent = nullptr);

    void refresh();
    bool dirty() const;

  Q_SIGNALS:
    void policy_saved();

  private:
    void search();
    void use_directory_entry();
    void show_policy(PolicyRevision policy);
    void select_assignment(int row);
    void load_form(const policy::Assignment& a, bool existing);
    policy::Assignment from_form() const;
    void new_assignment();
    void save();
    void remove();
    void update_buttons();
    bool may_discard();

    Connection connection_;
    PolicyRevision policy_;
    policy::Assignment loaded_;
    bool loading_ = false;
    int shown_row_ = -1;

    QLineEdit* search_text_;
    QComboBox* search_kind_;
    QListWidget* found_;
    QTableWidget* assignments_;
    QLineEdit* id_;
    QComboBox* workspace_;
    QComboBox* principal_kind_;
    QLineEdit* principal_name_;
    QComboBox* clipboard_;
    QComboBox* file_transfer_;
    QComboBox* printing_;
    QComboBox* removable_media_;
    QCheckBox* expires_;
    QDateTimeEdit* expires_at_;
    QSpinBox* offline_hours_;
    QComboBox* on_expiry_;
    QCheckBox* overriding_;
    QPushButton* save_;
    QPushButton* revert_;
    QPushButton* delete_;
    QLabel* status_;
};

} // namespace heirloom::console
