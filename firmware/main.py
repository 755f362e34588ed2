import faultline

faultline.start()
