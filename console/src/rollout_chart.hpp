#pragma once

// A step chart of an image's roll-out: one line per version, the number of endpoints holding
// it over time. Drawn with QPainter (no chart library needed).

#include "rollout.hpp"

#include <QWidget>

namespace heirloom::console {

class RolloutChart : public QWidget {
    Q_OBJECT
  public:
    explicit RolloutChart(QWidget* parent = nullptr);

    void set_rollout(const QString& image, std::vector<RolloutPoint> points);
    const std::vector<RolloutPoint>& points() const { return points_; }

  protected:
    void paintEvent(QPaintEvent* event) override;

  private:
    QString image_;
    std::vector<RolloutPoint> points_;
};

} // namespace heirloom::console
