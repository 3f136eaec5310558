# tcvom for Nuke: the Nodes menu only (GUI sessions).
import nuke

_menu = nuke.menu("Nodes").addMenu("TCVOM", icon="tcvom.png")
_menu.addCommand("TCVOM_Matte", "import tcvom_nuke.nukenode; tcvom_nuke.nukenode.create_matte()", icon="tcvom.png")
_menu.addCommand("TCVOM_Inference", "nuke.createNode('TCVOM_Inference')", icon="tcvom.png")
