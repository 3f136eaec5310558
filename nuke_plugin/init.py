# tcvom for Nuke: paths only (this file also runs on render farms, with no UI).
# Put this folder on NUKE_PATH. The TCVOM_Matte node needs nothing from here to render.
import nuke

nuke.pluginAddPath("./icons")
nuke.pluginAddPath("./gizmos")
