#pragma once

// Images and their versions (size, date, who pushed them, which endpoints run each), and
// pushing a VHD as a new version: packed, uploaded and published by the same code as
// `heirloom-admin push`, on a worker thread with a progress bar and a Cancel button. A
// cancelled push publishes nothing; the objects it uploaded are reused by the next push.

#include "admin_api.hpp"

#include <QThreadPool>
#include <QWidget>
#include <atomic>
#include <memory>

class QComboBox;
class QLabel;
class QLineEdit;
class QProgressBar;
class QSpinBox;
class QPushButton;
class QTimer;
class QTreeWidget;

namespace heirloom::console {

class PushProgress;

class ImagesPage : public QWidget {
    Q_OBJECT
  public:
    ImagesPage(Connection connection, QWidget* parent = nullptr);
    ~ImagesPage() override;

    void refresh();
    // Starts pushing vhd as the next version of image (the image is made on first push).
    void push(const QString& image, const QString& vhd);
    void cancel_push();
    bool pushing() const { return pushing_; }

  Q_SIGNALS:
    void images_loaded();
    // The progress bar moved: the push's stage ("pack", "upload") and the bar's value.
    void progress_shown(const QString& stage, int value);
    // A push ended: published (version > 0) or not (the message says why).
    void push_finished(quint64 version, const QString& message);

  private:
    friend class PushProgress;
    void show_images(const std::vector<Image>& images, const std::vector<Endpoint>& endpoints);
    void show_progress();
    void show_stage(const std::string& stage, std::uint64_t done, std::uint64_t total);
    void choose_image();
    void save_settings();

    Connection connection_;
    QTreeWidget* tree_;
    std::vector<policy::ImageRef> settings_; // each image's roll-out settings, from the policy
    QLabel* settings_image_;
    QSpinBox* minimum_;
    QSpinBox* pinned_;
    QPushButton* save_settings_;
    QComboBox* image_name_;
    QLineEdit* vhd_;
    QPushButton* push_button_;
    QPushButton* cancel_;
    QProgressBar* progress_bar_;
    QLabel* stage_;
    QLabel* status_;
    QTimer* poll_;
    bool pushing_ = false;
    std::shared_ptr<std::atomic<bool>> cancel_flag_;
    std::shared_ptr<PushProgress> progress_;
    QThreadPool push_pool_; // pushes only, so they never wait behind other server calls
};

} // namespace heirloom::console
