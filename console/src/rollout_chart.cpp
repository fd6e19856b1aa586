#include "rollout_chart.hpp"

#include "ui_support.hpp"

#include <QDateTime>
#include <QPainter>
#include <QPainterPath>
#include <set>

namespace heirloom::console {
namespace {

QColor version_colour(std::size_t i) {
    static const QColor colours[] = {QColor(0x1f, 0x77, 0xb4), QColor(0xd6, 0x27, 0x28),
                                     QColor(0x2c, 0xa0, 0x2c), QColor(0xff, 0x7f, 0x0e),
                                     QColor(0x94, 0x67, 0xbd), QColor(0x8c, 0x56, 0x4b)};
    return colours[i % std::size(colours)];
}

} // namespace

RolloutChart::RolloutChart(QWidget* parent) : QWidget(parent) {
    setMinimumSize(320, 160);
    setObjectName(QStringLiteral("rollout_chart"));
}

void RolloutChart::set_rollout(const QString& image, std::vector<RolloutPoint> points) {
    image_ = image;
    points_ = std::move(points);
    update();
}

void RolloutChart::paintEvent(QPaintEvent*) {
    QPainter p(this);
    p.setRenderHint(QPainter::Antialiasing);
    p.fillRect(rect(), palette().base());
    QFontMetrics fm = p.fontMetrics();
    int line = fm.height();
    QRect plot =
        rect().adjusted(fm.horizontalAdvance(QStringLiteral("000")) + 12, line + 8,
                        -fm.horizontalAdvance(QStringLiteral("version 00")) - 40, -line - 10);
    p.setPen(palette().text().color());
    p.drawText(QRect(0, 2, width(), line), Qt::AlignHCenter,
               image_.isEmpty() ? tr("Roll-out: no image has finished a sync yet")
                                : tr("Roll-out of %1: endpoints holding each version").arg(image_));
    if (points_.empty() || plot.width() < 40 || plot.height() < 20)
        return;

    std::set<std::uint64_t> versions;
    int most = 1;
    for (const auto& point : points_) {
        for (const auto& [version, count] : point.endpoints_per_version) {
            versions.insert(version);
            most = std::max(most, count);
        }
    }
    std::int64_t first = points_.front().time;
    std::int64_t last =
        std::max<std::int64_t>(points_.back().time, QDateTime::currentSecsSinceEpoch());
    if (last <= first)
        last = first + 1;
    auto x = [&](std::int64_t t) {
        return plot.left() +
               static_cast<double>(t - first) / static_cast<double>(last - first) * plot.width();
    };
    auto y = [&](int count) {
        return plot.bottom() - static_cast<double>(count) / most * plot.height();
    };

    p.setPen(QPen(palette().mid().color(), 1));
    p.drawLine(plot.bottomLeft(), plot.bottomRight());
    p.drawLine(plot.bottomLeft(), plot.topLeft());
    p.setPen(palette().text().color());
    p.drawText(QRect(0, plot.top() - line / 2, plot.left() - 6, line), Qt::AlignRight,
               QString::number(most));
    p.drawText(QRect(0, plot.bottom() - line / 2, plot.left() - 6, line), Qt::AlignRight,
               QStringLiteral("0"));
    p.drawText(QRect(plot.left(), plot.bottom() + 4, plot.width() / 2, line), Qt::AlignLeft,
               format_time(first));
    p.drawText(QRect(plot.center().x(), plot.bottom() + 4, plot.width() / 2, line), Qt::AlignRight,
               format_time(last));

    std::size_t index = 0;
    for (std::uint64_t version : versions) {
        QColor colour = version_colour(index);
        QPainterPath path;
        int previous = 0;
        path.moveTo(x(first), y(0));
        for (const auto& point : points_) {
            auto it = point.endpoints_per_version.find(version);
            int count = it == point.endpoints_per_version.end() ? 0 : it->second;
            path.lineTo(x(point.time), y(previous));
            path.lineTo(x(point.time), y(count));
            previous = count;
        }
        path.lineTo(x(last), y(previous));
        p.setPen(QPen(colour, 2));
        p.drawPath(path);
        int legend_y = plot.top() + static_cast<int>(index) * (line + 4);
        p.fillRect(QRect(plot.right() + 12, legend_y + 2, 14, line - 4), colour);
        p.setPen(palette().text().color());
        p.drawText(QPoint(plot.right() + 30, legend_y + fm.ascent()),
                   tr("version %1").arg(version));
        ++index;
    }
}

} // namespace heirloom::console
